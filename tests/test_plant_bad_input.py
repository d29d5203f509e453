"""Bad input for the plant options (issue 16): one clear line, a non-zero exit, never a traceback.

A Sparkplug or OPC UA option without its package (the import blocked in a fresh interpreter, as on a
device installed without the extra), a station or inspection name that cannot be a topic level, an
OPC UA server exposed beyond loopback without credentials."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import REPO, run_edge_in_process

DEMO = REPO / "edge" / "demo"


def write_config(folder: Path, sinks: str) -> Path:
    config = folder / "edge.yaml"
    config.write_text(
        f"bundle: {DEMO / 'bundle'}\n"
        f"source: {{images: {DEMO / 'images'}}}\n"
        f"out: {folder / 'out'}\n"
        "sinks:\n  stdout: false\n  jsonl: false\n  sqlite: false\n  snapshots: false\n" + textwrap.indent(sinks, "  ")
    )
    return config


def edge_run_without(module: str, config: Path) -> subprocess.CompletedProcess:
    """`edge run --config` in an interpreter where `module` cannot be imported."""
    script = (
        f"import sys; sys.modules[{module!r}] = None\n"  # `import module` now raises ImportError
        "from edge_cli.app import main\n"
        f"main(['run', '--config', {str(config)!r}, '--max-frames', '2'])\n"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(
    "module, sinks, extra",
    [
        ("google.protobuf", "mqtt: {host: 127.0.0.1, port: 1, connect_timeout_s: 0.5, sparkplug: {}}\n", "sparkplug"),
        ("asyncua", "opcua: {port: 1}\n", "opcua"),
    ],
)
def test_an_option_without_its_package_names_the_extra_to_install(tmp_path, module, sinks, extra):
    line = one_error_line(edge_run_without(module, write_config(tmp_path, sinks)))
    assert f"pip install 'edge-inspect[{extra}]'" in line
    assert not (tmp_path / "out" / "state" / "outbox-mqtt.db").exists()  # said before any sink connected


@pytest.mark.parametrize(
    "sinks, says",
    [
        (
            "mqtt: {host: 127.0.0.1, station: 'line/#'}\n",
            "sinks.mqtt.station: station 'line/#' cannot be an MQTT topic",
        ),
        ("mqtt: {host: 127.0.0.1, inspection: '+'}\n", "sinks.mqtt.inspection: inspection '+' cannot be an MQTT topic"),
        ("mqtt: {host: 127.0.0.1, inspection: ''}\n", "sinks.mqtt.inspection: inspection must not be empty"),
        ("opcua: {host: 0.0.0.0}\n", "sinks.opcua: the OPC UA server on 0.0.0.0 would be open to anyone"),
        ("mqtt: {host: h, sparkplug: {group_id: 'a+b'}}\n", "sinks.mqtt.sparkplug.group_id: group_id 'a+b' cannot"),
    ],
)
def test_names_and_exposure_the_plant_would_regret_are_one_line(tmp_path, sinks, says):
    result = run_edge_in_process("run", "--config", write_config(tmp_path, sinks))
    line = one_error_line(result)
    assert says in line and "edge.yaml:" in line, line
    assert result.returncode == 2
