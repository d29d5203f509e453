"""The YAML run config: validation, one-line errors with line numbers, paths, secrets, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_edge_in_process as run_edge  # device commands: no fresh interpreter needed

from edge.config import RunConfig, SinksConfig, load_config
from edge.errors import EdgeError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "edge.example.yaml"


def write(tmp_path: Path, text: str, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(EdgeError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_shipped_example_validates_and_says_what_it_shows():
    config = load_config(EXAMPLE)
    assert config.source is not None and config.source.kind == "camera"
    assert config.bundle == Path("/opt/edge-inspect/bundle")
    assert config.sinks.mqtt.effective_port == 8883 and config.sinks.mqtt.password_env == "EDGE_MQTT_PASSWORD"
    assert config.sinks.webhook.headers_env == {"Authorization": "EDGE_WEBHOOK_AUTH"}
    assert config.sinks.gpio.pin == 17
    assert config.state_dir == Path("/var/lib/edge-inspect/state")
    assert config.decision.votes == 2 and config.decision.window == 3


def test_defaults_without_a_file():
    config = RunConfig()
    assert config.out == Path("edge-out") and config.state_dir == Path("edge-out/state")
    sinks = config.sinks
    assert sinks.stdout and sinks.jsonl and sinks.sqlite and sinks.snapshots
    assert sinks.webhook is None and sinks.mqtt is None and sinks.gpio is None


def test_unknown_key_names_file_line_and_a_suggestion(tmp_path):
    path = write(tmp_path, "sinks:\n  mqtt:\n    host: broker\n    prot: 1883\n")
    assert error_of(path) == f"{path}:4: sinks.mqtt.prot: unknown key; did you mean 'port'?"


def test_unknown_section_lists_what_is_allowed(tmp_path):
    path = write(tmp_path, "bundle: b\nalerts:\n  x: 1\n")
    message = error_of(path)
    assert message.startswith(f"{path}:2: alerts: unknown key")
    assert "sinks" in message


def test_wrong_type_shows_the_value_and_the_line(tmp_path):
    path = write(tmp_path, "sinks:\n  gpio:\n    pin: seventeen\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: sinks.gpio.pin: Input should be a valid integer")
    assert "'seventeen'" in message


def test_first_problem_in_file_order_is_reported_and_the_rest_counted(tmp_path):
    path = write(tmp_path, "decision:\n  votes: 0\nsinks:\n  webhook:\n    url: ftp://x\n")
    message = error_of(path)
    assert message.startswith(f"{path}:2: decision.votes:")
    assert message.endswith("(and 1 more problem)")


def test_model_level_rules_point_at_their_section(tmp_path):
    path = write(tmp_path, "source:\n  camera: 0\n  video: a.mp4\n")
    assert "source: give exactly one source" in error_of(path)
    path = write(tmp_path, "sinks:\n  mqtt:\n    host: b\n    tls:\n      cert: c.pem\n")
    assert error_of(path).startswith(f"{path}:4: sinks.mqtt.tls: tls cert and key go together")


def test_yaml_syntax_error_duplicate_key_empty_and_missing_file(tmp_path):
    assert error_of(write(tmp_path, "sinks:\n  mqtt: {host: x\n")).startswith(
        f"{tmp_path / 'edge.yaml'}:3: not valid YAML"
    )
    dup = write(tmp_path, "out: a\nsinks:\n  stdout: true\n  stdout: false\n")
    assert error_of(dup) == f"{dup}:4: sinks.stdout: duplicate key (first on line 3); keep one"
    assert "the config is empty" in error_of(write(tmp_path, "# nothing yet\n"))
    assert "must be a mapping" in error_of(write(tmp_path, "- a\n- b\n"))
    assert error_of(tmp_path / "nope.yaml").startswith("config file not found:")


def test_secrets_are_named_not_written(tmp_path):
    path = write(tmp_path, "sinks:\n  mqtt:\n    host: b\n    password_env: hunter2!\n")
    assert "is not an environment variable name" in error_of(path)


def test_sinks_switch_off_and_on(tmp_path):
    config = load_config(
        write(tmp_path, "sinks:\n  stdout: false\n  sqlite: false\n  jsonl:\n  snapshots: {max_count: 3}\n")
    )
    s = config.sinks
    assert not s.stdout and s.sqlite is None
    assert s.jsonl is not None and s.jsonl.max_mb == 50  # bare key: defaults
    assert s.snapshots.max_count == 3 and s.snapshots.max_mb == 2000
    # An empty section (its keys commented out) is its defaults.
    assert load_config(write(tmp_path, "geometry:\ndecision:\nout: o\n")).decision.votes == 1
    assert SinksConfig.model_validate({"jsonl": True}).jsonl is not None


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, "bundle: bundle\nout: ../var/out\nsource:\n  images: frames\ngeometry:\n  mask: mask.png\n")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    config = load_config(path)
    assert config.bundle == folder / "bundle"
    assert config.out == folder / "../var/out"
    assert config.state_dir == folder / "../var/out/state"
    assert config.source.images == str(folder / "frames")
    assert config.geometry.mask == str(folder / "mask.png")
    absolute = load_config(write(folder, "bundle: /opt/b\n", "abs.yaml"))
    assert absolute.bundle == Path("/opt/b")


def test_sink_files_go_under_out(tmp_path):
    from edge.sinks.factory import build_sinks

    config = SinksConfig.model_validate(
        {"stdout": False, "jsonl": {"path": "logs/e.jsonl"}, "sqlite": {"path": str(tmp_path / "abs.db")}}
    )
    built = build_sinks(config, tmp_path / "out", tmp_path / "state")
    built.close()
    assert (tmp_path / "out" / "logs" / "e.jsonl").exists()
    assert (tmp_path / "abs.db").exists()
    assert (tmp_path / "out" / "snapshots").is_dir()


# --- through the command line: exit 2 and one line --------------------------------------------


BAD_CONFIGS = {
    "unknown key": (
        "sinks:\n  jsonl:\n    max_size: 10\n",
        ":3: sinks.jsonl.max_size: unknown key; allowed here: path, max_mb, keep, fsync",
    ),
    "wrong type": (
        "sinks:\n  mqtt:\n    host: b\n    port: eighteen\n",
        ":4: sinks.mqtt.port: Input should be a valid integer",
    ),
    "out of range": (
        "sinks:\n  mqtt:\n    host: b\n    port: 70000\n",
        ":4: sinks.mqtt.port: Input should be less than or equal to 65535",
    ),
    "nan": (
        "source:\n  camera: 0\n  watchdog:\n    backoff_max: .nan\n",
        ":4: source.watchdog.backoff_max: Input should be a finite number (got nan)",
    ),
    "infinity": ("metrics:\n  every_seconds: .inf\n", ":2: metrics.every_seconds: Input should be a finite number"),
    "webhook port": (
        "sinks:\n  webhook:\n    url: http://127.0.0.1:99999/hook\n",
        ":3: sinks.webhook.url: url port must be a number from 1 to 65535",
    ),
    "stream port": ("source:\n  url: rtsp://cam:70000/s1\n", ":2: source.url: url port must be a number from 1"),
    "bad yaml": ("source: [camera\n", ": not valid YAML"),
    "two sources": ("source:\n  camera: 0\n  images: x\n", ":1: source: give exactly one source"),
    "decision": ("decision:\n  votes: 3\n  window: 2\n", ":1: decision: votes (3) cannot exceed window (2)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configs_are_one_line_and_exit_2(tmp_path, case):
    text, expected = BAD_CONFIGS[case]
    path = write(tmp_path, text)
    proc = run_edge("run", "--config", str(path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}") and expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_config_file_is_one_line(tmp_path):
    proc = run_edge("run", "--config", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == f"error: config file not found: {tmp_path / 'missing.yaml'} "
        "(see deploy/edge.example.yaml for a starting point)"
    )


def test_command_line_options_override_the_file(tmp_path):
    # The file names one bundle, the command line another: the command line wins.
    path = write(tmp_path, "bundle: from-file\nsource:\n  images: frames\n")
    proc = run_edge("run", "--config", str(path), "--bundle", str(tmp_path / "from-cli"))
    assert proc.returncode == 2
    assert "from-cli" in proc.stderr and "from-file" not in proc.stderr
    # A source option replaces the file's source kind instead of clashing with it.
    proc = run_edge("run", "--config", str(path), "--camera", "0", "--votes", "5", "--window", "2")
    assert proc.returncode == 2 and "votes (5) cannot exceed window (2)" in proc.stderr
