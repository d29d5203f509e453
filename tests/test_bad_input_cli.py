"""Bad input to the device commands (edge run, events, info, bench, demo) is one line: `error: …`
on stderr, a non-zero exit, never a traceback. Every case runs `edge` inside the test process, its
output captured at file descriptors 1 and 2 as a subprocess's pipes would be (the sweep is 55 cases;
a fresh interpreter each costs a second of CPU); one case per command also runs as a real
`python -m edge_cli` subprocess, so what the process itself prints and returns is checked too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import REPO, run_edge, run_edge_in_process

DEMO = REPO / "edge" / "demo"
BUNDLE = DEMO / "bundle"
IMAGES = DEMO / "images"


def _bundle_with(folder: Path, edit) -> Path:
    """A copy of the demo bundle (its model linked, not copied) with bundle.json edited as text."""
    folder.mkdir()
    (folder / "model_int8.tflite").symlink_to(BUNDLE / "model_int8.tflite")
    (folder / "bundle.json").write_text(edit((BUNDLE / "bundle.json").read_text()))
    return folder


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """A folder of bad inputs, named after what is wrong with them."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "empty").mkdir()
    (root / "not-json").mkdir()
    (root / "not-json" / "bundle.json").write_text("{")
    (root / "binary").mkdir()
    (root / "binary" / "bundle.json").write_bytes(b"\xff\xfe\x00")
    (root / "list").mkdir()
    (root / "list" / "bundle.json").write_text("[]")
    (root / "manifest-dir").mkdir()
    (root / "manifest-dir" / "bundle.json").mkdir()
    _bundle_with(root / "nan", lambda t: t.replace('"value": 20.206079483032227', '"value": NaN'))
    _bundle_with(root / "inf", lambda t: t.replace('"std": 2.7775354160256844', '"std": -Infinity'))
    _bundle_with(root / "string-threshold", lambda t: t.replace('"value": 20.206079483032227', '"value": "high"'))
    missing_key = json.loads((BUNDLE / "bundle.json").read_text())
    del missing_key["threshold"]
    _bundle_with(root / "no-threshold", lambda _t: json.dumps(missing_key))
    (root / "tampered").mkdir()
    shutil.copy(BUNDLE / "bundle.json", root / "tampered" / "bundle.json")
    (root / "tampered" / "model_int8.tflite").write_bytes(b"not the calibrated model")
    configs = {
        "bad.yaml": "bundle: [1\n",
        "negative.yaml": "threads: -2\n",
        "type.yaml": "threads: many\n",
        "empty.yaml": "",
        "nan.yaml": "decision:\n  cooldown_seconds: .nan\n",
        "port.yaml": "sinks:\n  webhook:\n    url: http://127.0.0.1:99999/hook\n",
        "mqtt-port.yaml": "sinks:\n  mqtt:\n    host: 127.0.0.1\n    port: 0\n",
        "scheme.yaml": "sinks:\n  webhook:\n    url: ftp://127.0.0.1/hook\n",
        "list.yaml": "- bundle\n- source\n",
    }
    for name, text in configs.items():
        (root / name).write_text(text)
    (root / "binary.yaml").write_bytes(b"\xff\xfe")
    (root / "junk.db").write_text("not a database")
    (root / "empty.avi").write_bytes(b"")
    (root / "garbage.avi").write_text("garbage")
    (root / "a-file").write_text("")
    return root


# (arguments; names under the `bad` folder are written as {bad}/NAME), what the one line says
CASES = [
    (["run", "--bundle", "{bad}/missing", "--images", IMAGES], "bundle not found"),
    (["run", "--bundle", "{bad}/empty", "--images", IMAGES], "no bundle.json in it"),
    (["run", "--bundle", "{bad}/not-json", "--images", IMAGES], "is not valid JSON"),
    (["run", "--bundle", "{bad}/binary", "--images", IMAGES], "is not valid JSON"),
    (["run", "--bundle", "{bad}/list", "--images", IMAGES], "schema version None"),
    (["run", "--bundle", "{bad}/manifest-dir", "--images", IMAGES], "no bundle.json in it"),
    (["run", "--bundle", "{bad}/nan", "--images", IMAGES], "threshold.value: must be a finite number, not nan"),
    (["run", "--bundle", "{bad}/inf", "--images", IMAGES], "normal_scores.std: must be a finite number, not -inf"),
    (["run", "--bundle", "{bad}/string-threshold", "--images", IMAGES], "threshold.value: Input should be"),
    (["run", "--bundle", "{bad}/no-threshold", "--images", IMAGES], "threshold: Field required"),
    (["run", "--bundle", "{bad}/tampered", "--images", IMAGES], "model hash mismatch"),
    (["run", "--config", "{bad}/bad.yaml"], "not valid YAML"),
    (["run", "--config", "{bad}/negative.yaml"], "threads: Input should be greater than or equal to 1"),
    (["run", "--config", "{bad}/type.yaml"], "threads: Input should be a valid integer"),
    (["run", "--config", "{bad}/empty.yaml"], "the config is empty"),
    (["run", "--config", "{bad}/nan.yaml"], "decision.cooldown_seconds"),
    (["run", "--config", "{bad}/port.yaml"], "url port must be a number from 1 to 65535"),
    (["run", "--config", "{bad}/mqtt-port.yaml"], "sinks.mqtt.port: Input should be greater than or equal to 1"),
    (["run", "--config", "{bad}/scheme.yaml"], "url must start with http:// or https://"),
    (["run", "--config", "{bad}/list.yaml"], "must be a mapping"),
    (["run", "--config", "{bad}/binary.yaml"], "cannot read config"),
    (["run", "--config", "{bad}/missing.yaml"], "config file not found"),
    (["run", "--config", "{bad}"], "config file not found"),
    (["run", "--bundle", BUNDLE, "--video", "{bad}/empty.avi"], "cannot open video"),
    (["run", "--bundle", BUNDLE, "--video", "{bad}/garbage.avi"], "cannot open video"),
    (["run", "--bundle", BUNDLE, "--video", "{bad}/missing.mp4"], "video not found"),
    (["run", "--bundle", BUNDLE, "--images", "{bad}/missing"], "folder not found"),
    (["run", "--bundle", BUNDLE, "--images", "{bad}/empty"], "no images in"),
    (["run", "--bundle", BUNDLE, "--camera", "{bad}/no-camera", "--fail-fast"], "not found"),
    (["run", "--bundle", BUNDLE, "--url", "not-a-url"], "url must start with a scheme"),
    (["run", "--bundle", BUNDLE, "--url", "rtsp://cam:99999/s1"], "url port must be a number from 1 to 65535"),
    (["run", "--bundle", BUNDLE, "--images", IMAGES, "--threads", "0"], "'--threads'"),
    (["run", "--bundle", BUNDLE, "--images", IMAGES, "--max-frames", "-5"], "'--max-frames'"),
    (["run", "--bundle", BUNDLE, "--images", IMAGES, "--max-frames", "many"], "'--max-frames'"),
    (["run", "--bundle", BUNDLE, "--images", IMAGES, "--duration", "nan"], "'--duration'"),
    (["run", "--bundle", BUNDLE, "--images", IMAGES, "--cooldown-seconds", "inf"], "--cooldown-seconds: inf"),
    (["run", "--bundle", BUNDLE, "--images", IMAGES, "--out", "{bad}/a-file"], "cannot write the run's outputs"),
    (["run", "--bundle", BUNDLE, "--classifier", "{bad}/missing", "--images", IMAGES], "bundle not found"),
    (["run", "--no-such-flag"], "No such option: --no-such-flag"),
    (["events", "--db", "{bad}/missing.db"], "no event store at"),
    (["events", "--db", "{bad}/junk.db"], "is not an edge-inspect event store"),
    (["events", "--db", "{bad}/empty.avi"], "is not an edge-inspect event store"),
    (["events", "--db", "{bad}/junk.db", "--since", "tomorrowish"], "cannot read time 'tomorrowish'"),
    (["events", "--limit", "-1"], "'--limit'"),
    (["events", "--min-score", "nan"], "--min-score: nan is not a finite number"),
    (["info", "{bad}/missing"], "bundle not found"),
    (["info", "{bad}/not-json"], "is not valid JSON"),
    (["info", "{bad}/nan"], "must be a finite number"),
    (["bench", "{bad}/inf"], "must be a finite number"),
    (["bench", BUNDLE, "--size", "0x0"], "give WIDTHxHEIGHT"),
    (["bench", BUNDLE, "--threads", "0"], "give whole numbers >= 1"),
    (["bench", BUNDLE, "--rate", "inf"], "--rate: inf is not a finite number"),
    (["bench", BUNDLE, "--video", "{bad}/missing.mp4"], "video not found"),
    (["demo", "--out", "{bad}/a-file"], "cannot write the run's outputs"),
    (["no-such-command"], "No such command 'no-such-command'"),
]


def _assert_one_error_line(proc, message: str, cwd: Path) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]
    assert not any(cwd.iterdir()), "a refused run leaves nothing behind"


def _argv(args, bad: Path) -> list[str]:
    return [str(a).replace("{bad}", str(bad)) for a in args]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(map(str, a))[:60] for a, _ in CASES])
def test_bad_input_is_one_error_line(bad, tmp_path, args, message):
    _assert_one_error_line(run_edge_in_process(*_argv(args, bad), cwd=tmp_path), message, tmp_path)


# The first case of each command, and an unknown command, as a real process.
IN_A_PROCESS = [
    next(case for case in CASES if case[0][0] == command) for command in dict.fromkeys(a[0] for a, _ in CASES)
]


@pytest.mark.parametrize("args, message", IN_A_PROCESS, ids=[" ".join(map(str, a))[:60] for a, _ in IN_A_PROCESS])
def test_bad_input_in_a_real_process(bad, tmp_path, args, message):
    _assert_one_error_line(run_edge(*_argv(args, bad), cwd=tmp_path, timeout=60), message, tmp_path)
