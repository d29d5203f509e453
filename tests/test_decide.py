"""Decision: debounce, cooldown (frames and seconds), part trigger with hysteresis, one alert per part."""

from __future__ import annotations

import numpy as np
import pytest

from edge.decide import Decider, DecisionConfig, PartTrigger, PartTriggerConfig


def fired_at(decider: Decider, scores) -> list[int]:
    return [i for i, s in enumerate(scores) if decider.frame(s, i) is not None]


def test_single_frame_over_threshold_alerts_by_default():
    assert fired_at(Decider(0.5), [0.1, 0.6, 0.2, 0.7]) == [1, 3]


def test_equal_to_threshold_is_not_over():
    assert fired_at(Decider(0.5), [0.5]) == []


def test_n_of_m_debounce_ignores_single_spikes():
    decider = Decider(0.5, DecisionConfig(votes=2, window=3))
    assert fired_at(decider, [0.9, 0.1, 0.1, 0.9, 0.1, 0.9, 0.9]) == [5]


def test_cooldown_in_frames():
    decider = Decider(0.5, DecisionConfig(cooldown=2))
    assert fired_at(decider, [0.9] * 7) == [0, 3, 6]


def test_cooldown_in_seconds_uses_the_clock():
    now = [0.0]
    decider = Decider(0.5, DecisionConfig(cooldown_seconds=10), clock=lambda: now[0])
    fired = []
    for t in (0, 1, 5, 9.9, 10.1, 11):
        now[0] = t
        if decider.frame(0.9, t):
            fired.append(t)
    assert fired == [0, 10.1]


def test_update_keeps_the_boolean_interface():
    assert Decider(0.5).update(0.9) is True


def test_votes_cannot_exceed_window():
    with pytest.raises(ValueError, match="cannot exceed"):
        DecisionConfig(votes=3, window=2)


def test_part_trigger_needs_hysteresis():
    with pytest.raises(ValueError, match="below enter"):
        PartTriggerConfig(enter=5, leave=5)


# -- part trigger --------------------------------------------------------------------------------


def scene(part: bool, rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    """A conveyor: textured belt; a part is a bright block."""
    frame = np.clip(100 + rng.normal(0, 3, (60, 100)), 0, 255).astype(np.uint8)
    if part:
        frame[15:45, 30 + shift : 70 + shift] = 200
    return frame


def test_trigger_learns_the_empty_belt_then_sees_a_part_come_and_go():
    cfg = PartTriggerConfig(enter=12, leave=6, leave_frames=2, learn_frames=5)
    trigger = PartTrigger(cfg)
    rng = np.random.default_rng(0)
    seq = [False] * 5 + [False] * 3 + [True] * 4 + [False] * 4
    states = [trigger.update(scene(p, rng)) for p in seq]
    assert states[:5] == [False] * 5  # learning
    assert states[5:8] == [False] * 3
    assert states[8:12] == [True] * 4
    assert states[12] is True  # one quiet frame is not enough (leave_frames=2)
    assert states[13:] == [False] * 3


def test_trigger_hysteresis_keeps_a_part_between_leave_and_enter():
    cfg = PartTriggerConfig(enter=20, leave=5, leave_frames=1, learn_frames=3, adapt=0)
    trigger = PartTrigger(cfg)
    belt = np.full((40, 40), 100, np.uint8)
    for _ in range(3):
        trigger.update(belt)
    assert trigger.update(belt + 30) is True  # enters at 30 > 20
    assert trigger.update(belt + 10) is True  # 10 is below enter but above leave: stays
    assert trigger.update(belt + 3) is False  # leaves below 5
    assert trigger.update(belt + 10) is False  # and 10 is not enough to come back


def test_trigger_follows_slow_light_changes_while_empty():
    cfg = PartTriggerConfig(enter=15, leave=5, learn_frames=3, adapt=0.5)
    trigger = PartTrigger(cfg)
    level = 100.0
    for _ in range(3):
        trigger.update(np.full((40, 40), level, np.uint8))
    for _ in range(40):  # the lamp warms up by 30 grey levels, slowly
        level += 0.75
        assert trigger.update(np.full((40, 40), level, np.uint8)) is False


def test_trigger_looks_only_inside_the_roi():
    cfg = PartTriggerConfig(enter=10, leave=5, learn_frames=2)
    trigger = PartTrigger(cfg, roi=(50, 0, 50, 60))
    rng = np.random.default_rng(1)
    for _ in range(2):
        trigger.update(scene(False, rng))
    outside = scene(False, rng)
    outside[:, :40] = 250  # a hand outside the ROI
    assert trigger.update(outside) is False


def part_decider(pick="max", **kw) -> Decider:
    return Decider(0.5, DecisionConfig(part_trigger=PartTriggerConfig(pick=pick, **kw.pop("trigger", {})), **kw))


def test_one_part_one_alert_for_its_highest_frame():
    decider = part_decider("max")
    for i, s in enumerate([0.2, 0.7, 0.9, 0.6, 0.3]):
        assert decider.frame(s, f"frame{i}") is None  # nothing while the part is in view
    decision = decider.part_left()
    assert decision.score == 0.9 and decision.payload == "frame2"
    assert decision.part == 1 and decision.part_frames == 5
    assert decider.part_left() is None  # already judged


def test_first_pick_alerts_once_as_soon_as_the_part_is_bad():
    decider = part_decider("first")
    results = [decider.frame(s, i) for i, s in enumerate([0.2, 0.7, 0.9, 0.8])]
    assert [r.payload if r else None for r in results] == [None, 1, None, None]
    assert decider.part_left() is None


def test_good_part_raises_nothing_and_next_bad_part_does():
    decider = part_decider("max")
    for s in (0.1, 0.3, 0.2):
        decider.frame(s, "good")
    assert decider.part_left() is None
    for s in (0.1, 0.8):
        decider.frame(s, "bad")
    assert decider.part_left().part == 2
    assert decider.parts == 2


def test_votes_apply_within_a_part():
    decider = part_decider("max", votes=2, window=3)
    for s in (0.9, 0.1, 0.1, 0.1):  # a single spike: not bad
        decider.frame(s, None)
    assert decider.part_left() is None
    for s in (0.9, 0.1, 0.9):
        decider.frame(s, None)
    assert decider.part_left() is not None


def test_short_presences_are_ignored():
    decider = part_decider("max", trigger={"min_frames": 3})
    decider.frame(0.9, "flicker")
    assert decider.part_left() is None
    for s in (0.9, 0.9, 0.9):
        decider.frame(s, "part")
    assert decider.part_left() is not None


def test_part_still_in_view_at_the_end_of_input_is_judged():
    decider = part_decider("max")
    decider.frame(0.8, "last")
    assert decider.finish().payload == "last"
    assert Decider(0.5).finish() is None


def test_the_kept_best_frame_is_copied_when_the_decider_holds_it():
    buffer = np.zeros(3)
    decider = Decider(0.5, DecisionConfig(part_trigger=PartTriggerConfig()), keep=lambda p: p.copy())
    buffer[:] = 1
    decider.frame(0.9, buffer)
    buffer[:] = 2  # the caller reuses its buffer for the next frame
    decider.frame(0.1, buffer)
    assert decider.part_left().payload.tolist() == [1, 1, 1]
