"""A bundle rolled out to a running station by an MQTT command (issue 16), as a plant does it.

One real `edge run` (a subprocess) on a looped video, its --bundle a bundle history, a real
mosquitto on loopback and a loopback HTTP server holding the archives. Bad commands first — not
JSON, a missing key, an ftp:// URL, a wrong hash, an unreachable URL, a 404, an archive that is no
bundle, an archive reaching outside its folder, a bundle calibrated on frames of another shape —
each one line and a `rejected` result while the old bundle inspects on; then a good one, its URL
carrying a password and a token, fetched, checked, installed as v2 and swapped in: later alerts carry
it, and the secrets appear nowhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest
import yaml
from cli_helpers import run_edge_in_process
from sinks_helpers import Mosquitto, Subscriber, free_port, require_mosquitto
from test_health_drift import DEMO, noisy, record, scene
from test_plant_bad_input import one_error_line, write_config
from test_swap_run import Run, edit_manifest

from calibration.health_reference import write_health_reference
from edge.bundle import load_bundle
from edge.bundle_drop import ArchiveDrops
from edge.bundle_fetch import Limits, fetch, unpack
from edge.bundle_history import list_versions, start_history
from edge.errors import EdgeError

PREFIX = "cmdtest"
STATION = "st1"
SECRETS = ("s3cret-pw", "tok-9f2e")


class Files:
    """A loopback HTTP server for the archives in `folder`."""

    def __init__(self, folder: Path):
        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def archive(path: Path, folder: Path) -> str:
    """`tar czf path -C folder.parent folder.name`; the archive's sha256."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_archive(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundle_copy(folder: Path, bundle_id: str, version: int, threshold: float, reference=None) -> Path:
    shutil.copytree(DEMO / "bundle", folder)
    edit_manifest(folder, bundle_id, version, threshold)
    if reference is not None:
        write_health_reference(folder, [reference])
    return folder


class Sender:
    """Publishes commands and reads the station's results (its result topic, a live subscriber)."""

    def __init__(self, port: int, folder: Path):
        import paho.mqtt.client as mqtt

        self.base = f"{PREFIX}/{STATION}/default"
        self.results = Subscriber(port, f"{self.base}/cmd/bundle/result", client_id="t-cmd-results", clean=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-cmd-sender")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, payload, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(f"{self.base}/cmd/bundle", data, qos=1, retain=retain).wait_for_publish(10)

    def said(self) -> list[dict]:
        return [json.loads(p) for p in self.results.payloads(f"{self.base}/cmd/bundle/result")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.results.close()


def rejected_since(sender: Sender, before: int) -> bool:
    return any(r["state"] == "rejected" for r in sender.said()[before:])


def inspects_on(run: Run, count: int) -> bool:
    return run.alerts_of(1) >= count + 3


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    """The run, the bad commands and the good one done; what the run, the broker and the history said."""
    folder = tmp_path_factory.mktemp("cmd")
    www = folder / "www"
    www.mkdir()
    broker = Mosquitto(require_mosquitto(), folder / "broker").start()
    files = Files(www)
    sender = Sender(broker.port, folder)
    import numpy as np

    video = record(folder / "line.avi", [noisy(scene(), np.random.default_rng(0)) for _ in range(30)])
    wide = folder / "wide.png"  # a calibration frame of another camera: 16:9, not 4:3
    cv2.imwrite(str(wide), cv2.resize(scene(), (320, 180)))

    history = folder / "line1"
    start_history(bundle_copy(folder / "first", "cmd0001", 1, -1.0), history)
    good = archive(www / "line1-v2.tar.gz", bundle_copy(folder / "v2", "cmd0002", 2, -2.0))
    wide_sha = archive(www / "wide.tar.gz", bundle_copy(folder / "v3", "cmd0003", 3, -3.0, reference=wide))
    no_bundle = raw_archive(www / "notes.tar.gz", {"notes/readme.txt": b"not a bundle"})
    escape = raw_archive(www / "escape.tar.gz", {"bundle.json": b"{}", "../../escaped.txt": b"outside"})

    config = folder / "edge.yaml"
    mqtt = {"host": "127.0.0.1", "port": broker.port, "prefix": PREFIX, "station": STATION, "commands": True}
    config.write_text(yaml.safe_dump({"sinks": {"snapshots": False, "mqtt": mqtt}, "swap": {"poll_seconds": 0.2}}))
    drop = folder / "drop"
    drop.mkdir()
    args = ["--config", config, "--bundle", history, "--video", video, "--loop", "--out", folder / "out"]
    # a 25 fps line: the commands and what they answer are asserted, not throughput
    args += ["--watch-bundles", drop, "--rate", "25"]
    # Retained before the station connects: the broker replays it at the subscription, which must not run it.
    sender.send({"url": f"{files.url}/line1-v2.tar.gz", "sha256": good, "id": "retained"}, retain=True)
    run = Run([*args, "--threads", "1", "--metrics-every", "0"], folder)
    here = files.url
    bad = [
        ("not-json", b"{url: nope"),
        ("no-sha", {"url": f"{here}/line1-v2.tar.gz", "id": "no-sha"}),
        ("ftp", {"url": "ftp://127.0.0.1/line1-v2.tar.gz", "sha256": good, "id": "ftp"}),
        ("wrong-hash", {"url": f"{here}/line1-v2.tar.gz", "sha256": "0" * 64, "id": "wrong-hash"}),
        ("unreachable", {"url": f"http://127.0.0.1:{free_port()}/b.tar.gz", "sha256": good, "id": "unreachable"}),
        ("missing", {"url": f"{here}/gone.tar.gz", "sha256": good, "id": "missing"}),
        ("no-bundle", {"url": f"{here}/notes.tar.gz", "sha256": no_bundle, "id": "no-bundle"}),
        ("escape", {"url": f"{here}/escape.tar.gz", "sha256": escape, "id": "escape"}),
        ("wide", {"url": (www / "wide.tar.gz").as_uri(), "sha256": wide_sha, "id": "wide"}),
    ]
    said: dict = {"still running": []}
    try:
        run.wait(lambda: run.alerts_of(1) >= 5)
        for name, payload in bad:
            before = len(sender.said())
            sender.send(payload)
            run.wait(partial(rejected_since, sender, before), timeout=60)
            run.wait(partial(inspects_on, run, run.alerts_of(1)))  # the old bundle inspects on
            said["still running"].append(name)
        user, token = SECRETS
        url = f"http://fleet:{user}@{here.removeprefix('http://')}/line1-v2.tar.gz?token={token}"
        sender.send({"url": url, "sha256": good, "id": "rollout-7"})
        run.wait(lambda: run.alerts_of(2) >= 5)
        run.wait(lambda: any(r["state"] == "swapped" for r in sender.said()))
        said["versions"] = [(v.number, v.current, v.bundle.id if v.bundle else None) for v in list_versions(history)]
        said["history files"] = sorted(p.name for p in history.iterdir())
        # An archive and its .sha256 dropped into the watched folder: unpacked beside them and swapped in.
        sha = archive(folder / "line1-v4.tar.gz", bundle_copy(folder / "v4", "cmd0004", 4, -4.0))
        shutil.copy(folder / "line1-v4.tar.gz", drop)
        (drop / "line1-v4.tar.gz.sha256").write_text(f"{sha}  line1-v4.tar.gz\n")
        run.wait(lambda: run.alerts_of(4) >= 3)
        said["drop files"] = sorted(p.name for p in drop.iterdir())
    finally:
        code = run.stop()
        sender.close()
        files.stop()
        broker.stop()
    said.update(code=code, stderr=run.stderr(), alerts=run.alerts, events=run.events(), results=sender.said())
    said["escaped"] = (folder / "escaped.txt").exists() or (history.parent / "escaped.txt").exists()
    return said


def test_a_command_fetches_checks_installs_and_swaps_the_new_version(rollout):
    assert rollout["code"] == 0, rollout["stderr"]
    versions = [a["bundle_version"] for a in rollout["alerts"]]
    assert versions[0] == 1 and sorted(set(versions)) == [1, 2, 4]
    assert versions == sorted(versions)  # the old bundle until the swap, the new one after, nothing between
    states = [r["state"] for r in rollout["results"] if r["id"] == "rollout-7"]
    assert states == ["accepted", "installed", "swapped"]
    swapped = next(r for r in rollout["results"] if r["state"] == "swapped")
    assert swapped["bundle"]["id"] == "cmd0002" and swapped["running"]["id"] == "cmd0002"
    # Installed as v2 of the history and made current, so a restart runs it too; nothing else left.
    assert rollout["versions"] == [(1, False, "cmd0001"), (2, True, "cmd0002")]
    assert rollout["history files"] == ["current", "v1", "v2"]
    event = next(e for e in rollout["events"] if e["state"] == "swapped")
    assert event["detail"]["trigger"] == "mqtt:rollout-7" and event["detail"]["new"]["id"] == "cmd0002"


def test_each_bad_command_is_one_line_and_a_rejected_result_while_the_old_bundle_runs_on(rollout):
    assert rollout["still running"] == [
        "not-json",
        "no-sha",
        "ftp",
        "wrong-hash",
        "unreachable",
        "missing",
        "no-bundle",
        "escape",
        "wide",
    ]
    rejected = {r["id"]: r["reason"] for r in rollout["results"] if r["state"] == "rejected"}
    reasons = list(rejected.values())
    assert "the command is not JSON" in reasons[0]
    assert rejected["no-sha"].startswith("the command is invalid: sha256: Field required")
    assert "url must start with http://, https:// or file://, not ftp://" in rejected["ftp"]
    assert "the archive's sha256 is" in rejected["wrong-hash"]
    assert "the command says 000000000000" in rejected["wrong-hash"]
    assert rejected["unreachable"].startswith("cannot reach http://127.0.0.1:")
    assert "answered HTTP 404" in rejected["missing"]
    assert "the archive is not a bundle" in rejected["no-bundle"]
    assert "points outside its folder" in rejected["escape"] and not rollout["escaped"]
    assert "calibrated on frames of another shape" in rejected["wide"]
    assert len(rejected) == 9
    missing = next(r for r in rollout["results"] if r["id"] == "missing" and r["state"] == "rejected")
    assert missing["url"].endswith("/gone.tar.gz") and len(missing["sha256"]) == 64  # what was refused
    lines = [line for line in rollout["stderr"].splitlines() if " rejected: " in line]
    assert len(lines) == 9, lines
    assert all(line.startswith("bundle swap (mqtt:") and line.endswith("still running cmd0001 v1") for line in lines)
    assert "Traceback" not in rollout["stderr"]
    # The same rejections went through the sinks as bundle events (stdout here; MQTT's health topic too).
    assert sum(e["state"] == "rejected" for e in rollout["events"]) == 9
    # A retained command is not run (it would run again at every reconnect).
    assert "ignored: the broker replayed a retained one" in rollout["stderr"]
    assert not [r for r in rollout["results"] if r["id"] == "retained"]


def test_secrets_in_the_command_url_appear_nowhere(rollout):
    said = json.dumps(rollout["results"]) + json.dumps(rollout["events"]) + rollout["stderr"]
    for secret in SECRETS:
        assert secret not in said
    accepted = next(r for r in rollout["results"] if r["id"] == "rollout-7")
    assert accepted["url"].startswith("http://***@127.0.0.1:") and "token=***" in accepted["url"]


@pytest.mark.parametrize(
    "mqtt, says",
    [
        (
            "mqtt: {host: 10.0.0.5, commands: true}\n",
            "sinks.mqtt: commands from the broker at 10.0.0.5 (not on loopback) need tls and username + password_env",
        ),
        (
            "mqtt: {host: 10.0.0.5, commands: true, username: st1, password_env: P}\n",
            "need tls and username + password_env",
        ),
    ],
)
def test_commands_from_a_broker_off_loopback_need_tls_and_credentials(tmp_path, mqtt, says):
    line = one_error_line(run_edge_in_process("run", "--config", write_config(tmp_path, mqtt)))
    assert says in line and "edge.yaml:" in line, line


def test_commands_need_a_bundle_history_to_install_into(tmp_path):
    config = write_config(tmp_path, "mqtt: {host: 127.0.0.1, port: 1, commands: true}\n")
    line = one_error_line(run_edge_in_process("run", "--config", config))
    assert "sinks.mqtt.commands installs bundle versions" in line and "not a history" in line, line
    assert not (tmp_path / "out" / "state" / "outbox-mqtt.db").exists()  # said before the sink connected


def test_an_archive_dropped_with_its_sha256_into_the_watched_folder_is_swapped_in(rollout):
    assert rollout["drop files"] == ["line1-v4", "line1-v4.tar.gz", "line1-v4.tar.gz.sha256"]
    event = rollout["events"][-1]
    assert (event["state"], event["detail"]["trigger"], event["detail"]["new"]["id"]) == ("swapped", "watch", "cmd0004")


def test_a_dropped_archive_is_unpacked_only_when_complete_and_its_hash_matches(tmp_path):
    refused = []
    drops = ArchiveDrops(tmp_path, lambda archive, why: refused.append((archive.name, why)))
    sha = archive(tmp_path / "b1.tar.gz", bundle_copy(tmp_path / "src" / "b1", "d1", 1, 0.5))
    assert drops.poll() == [] and drops.poll() == []  # no .sha256 yet: it waits
    (tmp_path / "b1.tar.gz.sha256").write_text(f"{sha}  b1.tar.gz\n")
    assert drops.poll() == []  # the files must hold still for one poll
    assert drops.poll() == [tmp_path / "b1"] and load_bundle(tmp_path / "b1").id == "d1"
    archive(tmp_path / "b2.tar.gz", bundle_copy(tmp_path / "src" / "b2", "d2", 2, 0.5))
    (tmp_path / "b2.tar.gz.sha256").write_text("0" * 64)
    escape = raw_archive(tmp_path / "b3.tar.gz", {"../b3.txt": b"outside"})
    (tmp_path / "b3.tar.gz.sha256").write_text(escape)
    for _ in range(4):
        drops.poll()
    assert [name for name, _ in refused] == ["b2.tar.gz", "b3.tar.gz"]  # once each, not at every poll
    assert "its .sha256 says 000000000000" in refused[0][1] and "points outside" in refused[1][1]
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b3.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_a_download_is_bounded_and_a_link_in_the_archive_is_refused(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.tar.gz").write_bytes(b"x" * 5000)
    files = Files(www)
    try:
        with pytest.raises(EdgeError, match="is 5000 bytes, over the limit of 1000 bytes"):
            fetch(f"{files.url}/big.tar.gz", tmp_path / "a", Limits(max_bytes=1000))
    finally:
        files.stop()
    with pytest.raises(EdgeError, match="over the limit of 1000 bytes"):  # no Content-Length: counted as read
        fetch((www / "big.tar.gz").as_uri(), tmp_path / "b", Limits(max_bytes=1000))
    with tarfile.open(tmp_path / "link.tar.gz", "w:gz") as tar:
        link = tarfile.TarInfo("b/model.tflite")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(EdgeError, match="'b/model.tflite' is a link or a special file"):
        unpack(tmp_path / "link.tar.gz", tmp_path / "out", Limits())
    assert not (tmp_path / "out").exists()


def test_commands_are_taken_over_tls_with_credentials_or_on_loopback():
    from edge.config import MqttConfig

    safe = {"host": "broker.plant.local", "tls": {}, "username": "st1", "password_env": "P", "commands": True}
    assert MqttConfig(**safe).commands is not None
    assert MqttConfig(host="localhost", commands={"max_mb": 10}).commands.limits().max_bytes == 10 << 20
    assert MqttConfig(host="broker.plant.local", commands=False).commands is None  # off: nothing to secure
