"""The sink protocol, the fan-out that keeps one failing sink from stopping the others, and the
one-line, rate-limited problem log every sink uses."""

from __future__ import annotations

import threading
import time
from typing import Iterable, Protocol

from edge.alert import Alert
from edge.messages import to_stderr


class Sink(Protocol):
    name: str

    def emit(self, alert: Alert) -> None:
        """Deliver (or durably queue) one alert. Must not raise on a transient fault."""

    def close(self) -> None:
        """Flush and release resources."""

    # Optional: `review(update: ReviewUpdate)`, an operator's verdict on an earlier alert. Only sinks
    # that define it get reviews (stdout, webhook, MQTT); the others (GPIO: a verdict must not fire
    # the reject gate; the events file and store: the web page writes reviews.jsonl and the
    # `reviews` table itself) never see one, so no sink can take a review for a new alert.


def takes_reviews(sink) -> bool:
    return callable(getattr(sink, "review", None))


# Optional too: `event(event: HealthEvent)`, a change of state of the picture or the scores
# (edge.health, edge.drift). Stdout, the JSONL and SQLite stores, webhook and MQTT take them; GPIO
# never does (a blurred picture is not a part to reject).
def takes_events(sink) -> bool:
    return callable(getattr(sink, "event", None))


_log_lock = threading.Lock()
# key -> (when last said, times held back since, the message held back, its window)
_last_logged: dict[str, tuple[float, int, str, float]] = {}
LOG_EVERY_S = 60.0


def _say(message: str) -> None:
    try:
        to_stderr(f"edge: {message}")
    except (OSError, ValueError):
        pass  # stderr gone (closed pipe): nothing sensible left to do


def problem(message: str, key: str | None = None, every_s: float | None = None) -> None:
    """One line on stderr. With a key, the same problem is said once per `every_s` (a broker down
    for a week must not fill the journal); the repeats held back are counted and said in one line
    when the window ends ("N more times in the last minute", see flush_held_problems)."""
    every = LOG_EVERY_S if every_s is None else every_s
    now = time.monotonic()
    with _log_lock:
        if key is not None:
            last, held, _, _ = _last_logged.get(key, (-1e18, 0, "", every))
            if now - last < every:
                _last_logged[key] = (last, held + 1, message, every)
                return
            _last_logged[key] = (now, 0, message, every)
            if held:
                message += f" ({held} more times before this)"
    _say(message)


def flush_held_problems(force: bool = False) -> None:
    """Say how often each held-back problem repeated in its window, once the window is over (or now,
    with force: at the end of a run). Called by the alert worker about once a second."""
    now = time.monotonic()
    lines = []
    with _log_lock:
        for key, (last, held, message, every) in _last_logged.items():
            if held and (force or now - last >= every):
                window = "minute" if every == 60 else f"{every:g} s"
                lines.append(f"{message} — {held} more times in the last {window}")
                _last_logged[key] = (now, 0, message, every)
    for line in lines:
        _say(line)


def clear_problem(key: str) -> None:
    """Forget a rate-limited key, so the next occurrence of the problem is logged at once."""
    with _log_lock:
        _last_logged.pop(key, None)


def reset_problems() -> None:
    """Forget every rate-limited key (tests, and a long-lived process that starts a new run)."""
    with _log_lock:
        _last_logged.clear()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class SinkGroup:
    """All configured sinks behind one emit(): each sink is called in turn and an exception from one
    is logged as one line and swallowed, so inspection and the other sinks carry on."""

    name = "sinks"

    def __init__(self, sinks: Iterable[Sink]):
        self.sinks = list(sinks)
        self.failures: dict[str, int] = {}

    def emit(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.emit(alert)
            except Exception as exc:  # noqa: BLE001 - a sink must never stop the run
                self.failures[sink.name] = self.failures.get(sink.name, 0) + 1
                problem(f"sink {sink.name} failed on alert {alert.id}: {one_line(exc)}", key=f"emit:{sink.name}")

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                problem(f"sink {sink.name} failed to close: {one_line(exc)}")

    def __iter__(self):
        return iter(self.sinks)

    def __len__(self) -> int:
        return len(self.sinks)
