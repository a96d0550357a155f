"""An ONNX file's graph without its weights, read straight from the protobuf wire format.

Parsing a file whose weights are embedded copies every weight (onnx.load takes 0.6 s for VGG-11's
530 MB, ONNX Runtime over a second), although predicting from the graph needs only the weights'
shapes. ``graph_without_weights`` walks the file's fields without copying the large ones and writes
each large initializer as an external-data reference to where its bytes already lie in the file, so
ONNX Runtime maps them from the file when (and if) it needs them.

Wire format (protobuf encoding): a field is a varint key (number << 3 | wire type) and a value:
a varint (type 0), 8 bytes (1), a varint length and that many bytes (2) or 4 bytes (5). ModelProto
holds the graph in field 7, GraphProto its initializers in field 5, TensorProto its bytes in
raw_data (9), external references in external_data (13) and data_location (14, EXTERNAL = 1).
"""

from __future__ import annotations

import mmap
from pathlib import Path

from scaleprof.errors import BadInput

MODEL_GRAPH, GRAPH_INITIALIZER = 7, 5
TENSOR_RAW_DATA, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 9, 13, 14
LENGTH_DELIMITED = 2
EXTERNAL = 1


def _varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf, start: int, end: int):
    """(number, wire type, key start, value start, value end) of each field in buf[start:end]."""
    pos = start
    while pos < end:
        key, value_start = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, value_end = _varint(buf, value_start)
        elif wire == 1:
            value_end = value_start + 8
        elif wire == LENGTH_DELIMITED:
            length, value_start = _varint(buf, value_start)
            value_end = value_start + length
        elif wire == 5:
            value_end = value_start + 4
        else:
            raise ValueError(f"wire type {wire} (groups) does not occur in ONNX files")
        if value_end > end:
            raise ValueError("a field runs past its message")
        yield number, wire, pos, value_start, value_end
        pos = value_end


def _delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


def _entry(key: str, value: str) -> bytes:
    """A StringStringEntryProto (key = field 1, value = field 2) as a TensorProto.external_data field."""
    return _delimited(TENSOR_EXTERNAL_DATA, _delimited(1, key.encode()) + _delimited(2, value.encode()))


def _tensor(buf, start: int, end: int, location: str, min_bytes: int) -> bytes | None:
    """The TensorProto in buf[start:end] with its raw_data replaced by a reference, or None to keep it."""
    kept, raw = bytearray(), None
    for number, wire, key_start, value_start, value_end in _fields(buf, start, end):
        if number in (TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION):
            return None                                   # its bytes already lie elsewhere
        if number == TENSOR_RAW_DATA and wire == LENGTH_DELIMITED and value_end - value_start >= min_bytes:
            raw = (value_start, value_end - value_start)
        else:
            kept += buf[key_start:value_end]
    if raw is None:
        return None
    kept += _entry("location", location) + _entry("offset", str(raw[0])) + _entry("length", str(raw[1]))
    return bytes(kept + _encode_varint(TENSOR_DATA_LOCATION << 3) + _encode_varint(EXTERNAL))


def _graph(buf, start: int, end: int, location: str, min_bytes: int) -> tuple[bytes, int]:
    out, replaced = bytearray(), 0
    for number, wire, key_start, value_start, value_end in _fields(buf, start, end):
        tensor = (_tensor(buf, value_start, value_end, location, min_bytes)
                  if number == GRAPH_INITIALIZER and wire == LENGTH_DELIMITED else None)
        if tensor is None:
            out += buf[key_start:value_end]
        else:
            out += _delimited(GRAPH_INITIALIZER, tensor)
            replaced += 1
    return bytes(out), replaced


def graph_without_weights(path, min_bytes: int = 1024) -> bytes | None:
    """The serialized ModelProto of the ONNX file at ``path`` with every embedded initializer of at least
    ``min_bytes`` bytes replaced by an external-data reference into that same file (location: its file
    name, so the reference resolves in the file's directory); None when no initializer was replaced.
    ValueError where the file is no binary protobuf (a text or JSON model, a truncated or foreign file)."""
    path = Path(path)
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            out, replaced = bytearray(), 0
            for number, wire, key_start, value_start, value_end in _fields(buf, 0, len(buf)):
                if number == MODEL_GRAPH and wire == LENGTH_DELIMITED:
                    graph, replaced = _graph(buf, value_start, value_end, path.name, min_bytes)
                    out += _delimited(MODEL_GRAPH, graph)
                else:
                    out += buf[key_start:value_end]
    except OSError as err:
        raise BadInput(f"{path}: cannot read the ONNX file ({err.strerror or err})") from None
    return bytes(out) if replaced else None
