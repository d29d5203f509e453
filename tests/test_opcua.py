"""The OPC UA server beside the loop, read and reset by asyncua's own client on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pydantic import ValidationError
from sinks_helpers import fresh_problem_log, make_alert, wait_until  # noqa: F401 (autouse fixture)
from test_mqtt_topics import running_inspection

pytest.importorskip("asyncua")
from asyncua import Client, ua  # noqa: E402

from edge.config import SinksConfig  # noqa: E402
from edge.errors import EdgeError  # noqa: E402
from edge.sinks.opcua import NAMESPACE, OpcUaSink  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def read_all(url: str, names: list[str], user=None, password=None, reset=False) -> dict:
    client = Client(url, timeout=5)
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    async with client:
        idx = await client.get_namespace_index(NAMESPACE)
        inspection = await client.nodes.objects.get_child([f"{idx}:press-3", f"{idx}:top"])
        if reset:
            await inspection.call_method(f"{idx}:ResetCounters")
        out = {}
        for name in names:
            node = await inspection.get_child([f"{idx}:{part}" for part in name.split("/")])
            out[name] = await node.read_value()
        return out


def read(url, names, **kw) -> dict:
    return asyncio.run(read_all(url, names, **kw))


def test_state_last_result_counters_and_reset_for_the_one_user(tmp_path):
    # One server for the whole story: asyncua builds OPC UA's standard address space at every start (seconds).
    run = running_inspection(frames=40, alerts=2, score=7.5, threshold=5.0)
    sink = OpcUaSink(
        "127.0.0.1", free_port(), station="press-3", inspection="top", username="mes", password="s3cret", poll_s=0.05
    )
    me = dict(user="mes", password="s3cret")
    try:
        assert sink.endpoint.startswith("opc.tcp://127.0.0.1:")
        sink.bind_run(run)
        alert = make_alert(7, score=7.5)
        sink.emit(alert)
        assert sink.wait_started(60)
        # Credentials set: anonymous and a wrong password are refused.
        for user, password in ((None, None), ("mes", "wrong")):
            with pytest.raises((ua.UaError, ConnectionError, asyncio.TimeoutError)):
                read(sink.endpoint, ["CurrentState"], user=user, password=password)
        names = [
            "CurrentState",
            "LastResult/Pass",
            "LastResult/Score",
            "LastResult/Threshold",
            "LastResult/InternalRecipeId",
            "LastResult/InternalConfigurationId",
            "LastResult/CreationTime",
            "LastAlert/ResultId",
            "Counters/Frames",
            "Counters/Alerts",
        ]
        assert wait_until(
            lambda: read(sink.endpoint, ["LastAlert/ResultId"], **me)["LastAlert/ResultId"] == alert.id, 10
        )
        got = read(sink.endpoint, names, **me)
        assert got["CurrentState"] == "Operational"
        assert got["LastResult/Pass"] is False  # 7.5 over 5.0
        assert got["LastResult/Score"] == 7.5 and got["LastResult/Threshold"] == 5.0
        assert got["LastResult/InternalRecipeId"] == "b-1234" and got["LastResult/InternalConfigurationId"] == "3"
        assert got["Counters/Frames"] == 40 and got["Counters/Alerts"] == 2

        # ResetCounters: from 0 again, then counting on; the run's own counters are untouched.
        read(sink.endpoint, [], reset=True, **me)
        assert wait_until(lambda: read(sink.endpoint, ["Counters/Frames"], **me)["Counters/Frames"] == 0, 10)
        run.metrics.frames += 5
        assert wait_until(lambda: read(sink.endpoint, ["Counters/Frames"], **me)["Counters/Frames"] == 5, 10)
        assert run.metrics.frames == 45
    finally:
        sink.close()


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EdgeError, match=rf"cannot serve OPC UA on 127\.0\.0\.1:{port} .*pick another"):
            OpcUaSink("127.0.0.1", port)


@pytest.mark.parametrize(
    "opcua, says",
    [
        ({"host": "0.0.0.0"}, "open to anyone on that network: set username and password_env"),
        ({"host": "192.168.1.20", "username": "mes"}, "username and password_env go together"),
        ({"inspection": "top/#"}, "cannot be an MQTT topic level"),
    ],
)
def test_exposed_without_credentials_is_refused(opcua, says):
    with pytest.raises(ValidationError, match=says):
        SinksConfig.model_validate({"opcua": opcua})
