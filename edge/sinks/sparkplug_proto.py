"""The Sparkplug B `Payload` protobuf message (Eclipse Tahu's sparkplug_b.proto), built at import.

No generated *_pb2.py and no protoc: the message is described here field by field, with the numbers
and types of sparkplug_b.proto, and protobuf's own runtime builds the class. Only the fields this
project sends are described (timestamp, metrics, seq, uuid, body; a metric's name, alias, timestamp,
datatype, flags and its scalar values); protobuf skips unknown fields when decoding, so messages from
other nodes that carry datasets, templates or properties decode too (those parts are left out).

Needs the `protobuf` package (`pip install 'edge-inspect[sparkplug]'`).
"""

from __future__ import annotations

from edge.errors import EdgeError

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError:  # the option's extra is not installed
    raise EdgeError(
        "sinks.mqtt.sparkplug needs the protobuf package: pip install 'edge-inspect[sparkplug]' "
        "(or remove the sparkplug section)"
    ) from None

PACKAGE = "org.eclipse.tahu.protobuf"

# Sparkplug B data types (sparkplug_b.proto, enum DataType) this project uses.
INT32, INT64, UINT32, UINT64, FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME = 3, 4, 7, 8, 9, 10, 11, 12, 13

_T = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _T.LABEL_OPTIONAL, _T.LABEL_REPEATED

# (name, number, type, label, oneof index or None, message type name or None)
_METRIC_FIELDS = [
    ("name", 1, _T.TYPE_STRING, _OPTIONAL, None, None),
    ("alias", 2, _T.TYPE_UINT64, _OPTIONAL, None, None),
    ("timestamp", 3, _T.TYPE_UINT64, _OPTIONAL, None, None),
    ("datatype", 4, _T.TYPE_UINT32, _OPTIONAL, None, None),
    ("is_historical", 5, _T.TYPE_BOOL, _OPTIONAL, None, None),
    ("is_transient", 6, _T.TYPE_BOOL, _OPTIONAL, None, None),
    ("is_null", 7, _T.TYPE_BOOL, _OPTIONAL, None, None),
    ("int_value", 10, _T.TYPE_UINT32, _OPTIONAL, 0, None),
    ("long_value", 11, _T.TYPE_UINT64, _OPTIONAL, 0, None),
    ("float_value", 12, _T.TYPE_FLOAT, _OPTIONAL, 0, None),
    ("double_value", 13, _T.TYPE_DOUBLE, _OPTIONAL, 0, None),
    ("boolean_value", 14, _T.TYPE_BOOL, _OPTIONAL, 0, None),
    ("string_value", 15, _T.TYPE_STRING, _OPTIONAL, 0, None),
    ("bytes_value", 16, _T.TYPE_BYTES, _OPTIONAL, 0, None),
]
_PAYLOAD_FIELDS = [
    ("timestamp", 1, _T.TYPE_UINT64, _OPTIONAL, None, None),
    ("metrics", 2, _T.TYPE_MESSAGE, _REPEATED, None, f".{PACKAGE}.Payload.Metric"),
    ("seq", 3, _T.TYPE_UINT64, _OPTIONAL, None, None),
    ("uuid", 4, _T.TYPE_STRING, _OPTIONAL, None, None),
    ("body", 5, _T.TYPE_BYTES, _OPTIONAL, None, None),
]


def _add_fields(message: descriptor_pb2.DescriptorProto, fields: list) -> None:
    for name, number, kind, label, oneof, type_name in fields:
        f = message.field.add(name=name, number=number, type=kind, label=label)
        if oneof is not None:
            f.oneof_index = oneof
        if type_name is not None:
            f.type_name = type_name


def _build():
    proto = descriptor_pb2.FileDescriptorProto(name="edge_inspect/sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    payload = proto.message_type.add(name="Payload")
    _add_fields(payload, _PAYLOAD_FIELDS)
    payload.extension_range.add(start=6, end=536870912)  # `extensions 6 to max;`
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    _add_fields(metric, _METRIC_FIELDS)
    pool = descriptor_pool.DescriptorPool()  # our own pool: never clashes with a Tahu module loaded too
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))


Payload = _build()

# datatype -> the value field it travels in
VALUE_FIELD = {
    INT32: "int_value",
    UINT32: "int_value",
    INT64: "long_value",
    UINT64: "long_value",
    DATETIME: "long_value",
    FLOAT: "float_value",
    DOUBLE: "double_value",
    BOOLEAN: "boolean_value",
    STRING: "string_value",
}


def add_metric(payload, name: str, datatype: int, value, timestamp_ms: int) -> None:
    """One metric; None is sent as `is_null` (a value not known yet, e.g. no frame scored)."""
    m = payload.metrics.add(name=name, datatype=datatype, timestamp=timestamp_ms)
    if value is None:
        m.is_null = True
    elif datatype == INT32 and value < 0:
        m.int_value = value & 0xFFFFFFFF  # Sparkplug carries signed ints in the unsigned field, two's complement
    else:
        setattr(m, VALUE_FIELD[datatype], value)


def metric_value(metric):
    """The Python value of a decoded metric (None when is_null)."""
    if metric.is_null:
        return None
    field = metric.WhichOneof("value")
    value = getattr(metric, field) if field else None
    if metric.datatype == INT32 and value is not None and value >= 2**31:
        value -= 2**32
    return value
