"""Home Assistant MQTT discovery: each inspection appears as a device with a defect binary sensor and
score, fps and alert-count sensors, available while its status topic says "online".

The configs are retained on `<discovery_prefix>/<component>/<node_id>/<object_id>/config` and said
again on every connect (Home Assistant may have lost them). They point at the topics the MQTT sink
already publishes: nothing is sent for Home Assistant alone.

- defect (binary_sensor, device_class problem): ON with each message on `…/alerts`, back to OFF
  after `off_delay` seconds (an alert is an event, a binary sensor needs a state);
- score, fps, alerts (sensor): fields of the periodic `…/metrics` JSON;
- availability: `…/status`, `online` / `offline` (the sink's last will).
"""

from __future__ import annotations

import json

from edge.sinks.topics import Topics, safe_id

# How long the defect sensor stays ON after an alert: long enough for a dashboard to show it.
DEFECT_ON_S = 5


def _device(topics: Topics, node_id: str, sw_version: str) -> dict:
    return {
        "identifiers": [node_id],
        "name": f"{topics.station} {topics.inspection}",
        "manufacturer": "edge-inspect",
        "model": "visual inspection",
        "sw_version": sw_version,
    }


def discovery_messages(topics: Topics, discovery_prefix: str = "homeassistant", sw_version: str = "") -> list:
    """(topic, JSON payload) of each retained discovery config for one inspection."""
    node_id = safe_id("edge_inspect", topics.station, topics.inspection)
    common = {
        "availability": [{"topic": topics.status, "payload_available": "online", "payload_not_available": "offline"}],
        "device": _device(topics, node_id, sw_version),
        "origin": {"name": "edge-inspect", "sw_version": sw_version},
    }
    entities = [
        (
            "binary_sensor",
            "defect",
            {
                "name": "Defect",
                "state_topic": topics.alerts,
                "value_template": "ON",  # any alert payload means: a defect now
                "off_delay": DEFECT_ON_S,
                "device_class": "problem",
            },
        ),
        (
            "sensor",
            "score",
            {
                "name": "Score",
                "state_topic": topics.metrics,
                "value_template": "{{ value_json.last_score }}",
                "state_class": "measurement",
            },
        ),
        (
            "sensor",
            "fps",
            {
                "name": "Frames per second",
                "state_topic": topics.metrics,
                "value_template": "{{ value_json.fps }}",
                "unit_of_measurement": "fps",
                "state_class": "measurement",
            },
        ),
        (
            "sensor",
            "alerts",
            {
                "name": "Alerts",
                "state_topic": topics.metrics,
                "value_template": "{{ value_json.alerts }}",
                "state_class": "total_increasing",
            },
        ),
    ]
    messages = []
    for component, object_id, fields in entities:
        unique_id = f"{node_id}_{object_id}"
        payload = {**fields, "unique_id": unique_id, **common}
        messages.append((f"{discovery_prefix}/{component}/{node_id}/{object_id}/config", json.dumps(payload)))
    return messages
