"""`edge run --web`: the JSON endpoints of a real run on a real video (loopback only), tokens, bad
input at start and on the page, the threshold override, the observer. The page itself, in a real
Chromium: tests/test_web_browser.py."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading

import pytest
from cli_helpers import run_edge_in_process
from web_station import DEMO, TOKEN, free_port, start_station

pytest.importorskip("starlette")


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    station = start_station(tmp_path_factory.mktemp("station"))
    yield station
    station.stop()


def first_alert(station) -> dict:
    def some():
        status, data = station.json("/api/alerts?limit=5", token=None)
        return status == 200 and data["alerts"] and data["alerts"][0]

    return station.wait_for(some, timeout=15)


def test_status_scores_and_live_frames(station):
    status, s = station.json("/api/status", token=None)  # loopback: reads need no token
    assert status == 200 and s["source"] == "line.avi" and s["bundle"]["sha256"] == "cdd1902eb815"
    assert {"fps", "frames", "dropped", "reopens", "backlog", "disk", "threshold"} <= set(s)
    _, scores = station.json("/api/scores?after=0", token=None)
    assert scores["scores"] and scores["threshold"] == pytest.approx(20.206079, rel=1e-6)
    seqs = set()

    def two_frames():
        code, headers, body = station.request("/api/live.jpg", token=None)
        if code == 200:
            assert body[:2] == b"\xff\xd8"  # a JPEG
            seqs.add(int(headers["X-Frame-Seq"]))
        return len(seqs) >= 2

    station.wait_for(two_frames, timeout=10, every=0.25)


def test_alert_pictures_and_review_false_alarm(station):
    alert = first_alert(station)
    code, headers, body = station.request(alert["links"]["annotated"], token=None)
    assert code == 200 and body[:4] == b"\x89PNG"
    path = f"/api/alerts/{alert['id']}/review"
    assert station.json(path, {"verdict": "false_alarm"}, token=None)[0] == 401
    assert station.json(path, {"verdict": "false_alarm"}, token="wrong")[0] == 403
    status, record = station.json(path, {"verdict": "false_alarm", "who": "ann"})
    assert status == 200 and record["verdict"] == "false_alarm" and record["who"].startswith("ann")
    copied = station.out.parent / record["copied"]
    assert copied.is_file() and copied.parent == station.out / "review" / "train" / "good"
    with sqlite3.connect(station.out / "events.db") as db:
        assert db.execute("SELECT verdict FROM reviews WHERE alert_id = ?", (alert["id"],)).fetchone() == (
            "false_alarm",
        )
    line = json.loads((station.out / "reviews.jsonl").read_text().splitlines()[-1])
    assert line["alert_id"] == alert["id"] and line["type"] == "review"
    # `edge events` still reads the store that now has a reviews table
    result = run_edge_in_process("events", "--db", station.out / "events.db", "--json", "-n", "3")
    assert result.returncode == 0 and json.loads(result.stdout.splitlines()[0])["id"]


def test_real_defect_goes_to_its_test_folder_and_a_changed_mind_moves_it(station):
    alert = first_alert(station)
    path = f"/api/alerts/{alert['id']}/review"
    status, record = station.json(path, {"verdict": "real_defect", "defect": "crack"})
    assert status == 200 and "/review/test/crack/" in record["copied"]
    status, again = station.json(path, {"verdict": "false_alarm"})
    assert status == 200 and not (station.out.parent / record["copied"]).exists()


def test_bad_reviews_are_clear_http_errors_and_the_run_goes_on(station):
    alert = first_alert(station)
    status, body = station.json("/api/alerts/0123456789abcdef/review", {"verdict": "false_alarm"})
    assert status == 404 and "no alert" in body["error"]
    status, body = station.json(f"/api/alerts/{alert['id']}/review", {"verdict": "maybe"})
    assert status == 422 and "false_alarm" in body["error"]
    status, body = station.json(f"/api/alerts/{alert['id']}/review", {"verdict": "real_defect", "defect": "../x"})
    assert status == 422 and "defect name" in body["error"]
    frames = station.json("/api/status")[1]["frames"]
    station.wait_for(lambda: station.json("/api/status")[1]["frames"] > frames, timeout=5)


def test_threshold_outside_the_calibration_range_is_422_with_the_range(station):
    status, body = station.json("/api/threshold", {"threshold": 99})
    assert status == 422 and body["range"] == pytest.approx([12.553, 45.2919], rel=1e-4)
    assert station.json("/api/threshold", {"threshold": 30}, token=None)[0] == 401
    status, state = station.json("/api/threshold", token=None)
    assert status == 200 and state["rates"]["false_alarm_rate"] == pytest.approx(0.0869565, rel=1e-4)


def test_moving_the_threshold_changes_the_next_alerts_and_is_recorded(station):
    low = 12.553
    try:
        status, body = station.json("/api/threshold", {"threshold": low, "who": "ann"})
        assert status == 200 and body["applied"]["false_alarm_rate"] > 0.95
        assert body["applied"]["old"] == pytest.approx(20.206079, rel=1e-6)

        def alert_at_low():
            alerts = station.json("/api/alerts?limit=3", token=None)[1]["alerts"]
            return any(a["threshold"] == pytest.approx(low, rel=1e-4) for a in alerts)

        station.wait_for(alert_at_low, timeout=10)
        record = json.loads((station.bundle.parent / "bundle.threshold.json").read_text())
        assert record["threshold"] == low and record["history"][-1]["who"].startswith("ann")
    finally:
        station.json("/api/threshold", {"threshold": 20.206079483032227})


# -- bad input at start: one line, non-zero exit, nothing opened --------------------------------


def _run_web(tmp_path, listen: str, monkeypatch, token=None):
    if token is None:
        monkeypatch.delenv("EDGE_WEB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("EDGE_WEB_TOKEN", token)
    out = tmp_path / "out"
    result = run_edge_in_process(
        "run", "--bundle", DEMO / "bundle", "--images", DEMO / "images", "--out", out, "--web", listen
    )
    assert result.returncode != 0 and not out.exists()
    return result.stderr.strip()


def test_port_in_use_is_one_line(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        err = _run_web(tmp_path, f"127.0.0.1:{port}", monkeypatch)
    assert err.count("\n") == 0 and f"port {port} is in use" in err


def test_address_not_of_this_machine_and_network_without_token(tmp_path, monkeypatch):
    # 192.0.2.1 is TEST-NET-1: binding to it fails here; nothing is sent anywhere
    err = _run_web(tmp_path, "192.0.2.1:8080", monkeypatch, token=TOKEN)
    assert "not an address of this machine" in err and err.count("\n") == 0
    err = _run_web(tmp_path, f"0.0.0.0:{free_port()}", monkeypatch)
    assert "set EDGE_WEB_TOKEN" in err and err.count("\n") == 0
    assert "give HOST:PORT" in _run_web(tmp_path, "8080", monkeypatch)


# -- pieces ---------------------------------------------------------------------------------------


def test_on_the_network_every_read_needs_the_token():
    import uvicorn

    from edge.web.server import WebContext, build_app

    ctx = WebContext(None, None, None, None, lambda: {"frames": 1}, TOKEN, "EDGE_WEB_TOKEN", public=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(build_app(ctx), log_config=None, lifespan="off"))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    from web_station import Station

    station = Station(None, f"http://127.0.0.1:{sock.getsockname()[1]}/", None, None, None)
    try:
        station.wait_for(lambda: server.started, timeout=5)
        assert station.json("/api/status", token=None)[0] == 401
        assert station.json("/api/status", token="nope")[0] == 403
        assert station.json("/api/status")[1]["frames"] == 1
        assert station.request("/")[0] == 200  # the page itself holds no data
    finally:
        server.should_exit = True
        thread.join(5)


def test_observer_keeps_frames_only_while_watched_and_at_most_live_fps():
    import numpy as np

    from edge.web.observer import Observer

    now = [0.0]
    observer = Observer(trace=5, live_fps=2, clock=lambda: now[0])
    image, heat = np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.float32)
    for _ in range(10):
        observer.publish(image, heat, 1.0, 2.0, False)
    assert observer.latest is None and len(observer.scores) == 5  # nobody watching: scores only, bounded
    observer.watch()
    for _ in range(10):  # 10 frames in 1 s at live_fps 2: two kept
        observer.publish(image, heat, 1.0, 2.0, False)
        now[0] += 0.1
    assert observer.published_frames == 2 and observer.latest.heat is not heat


def test_a_recorded_override_holds_at_the_next_start_and_only_for_its_model(tmp_path):
    import shutil

    from edge.app import build_pipeline
    from edge.bundle import load_bundle
    from edge.config import RunConfig
    from edge.web.sensitivity import calibration_scores, override_path, write_override

    bundle = load_bundle(shutil.copytree(DEMO / "bundle", tmp_path / "b"))
    write_override(bundle, override_path(bundle), bundle.threshold, 30.0, "ann", calibration_scores(bundle))
    lines = []
    pipeline = build_pipeline(RunConfig(), lines.append, bundle=bundle)
    assert pipeline.decider.threshold == 30.0 and "from the override" in lines[-1]
    record = json.loads(override_path(bundle).read_text())
    override_path(bundle).write_text(json.dumps({**record, "model_sha256": "0" * 64}))
    pipeline = build_pipeline(RunConfig(), lines.append, bundle=bundle)
    assert pipeline.decider.threshold == bundle.threshold and "another model" in lines[-1]
