"""Per-layer times of a TensorRT engine, collected and written without TensorRT.

``LayerTimes`` collects ``IProfiler.report_layer_time(name, ms)`` calls iteration by iteration
and becomes a LayerTrace, each layer labelled with its ONNX nodes by an InspectorLayerMap
(scaleprof.engines.tensorrt.origins). The same trace is written, and trtexec's read back, in
trtexec's ``--exportProfile`` JSON: ``[{"count": N}, {"name", "timeMs", "averageMs", "medianMs",
"percentage"}, ...]`` (older trtexec: no ``medianMs``), which NVIDIA's engine explorer opens beside
the graph JSON. trtexec writes names unescaped, so control characters may appear raw: the reader
is lenient about them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from scaleprof.engines.base import LayerEvent, LayerTrace
from scaleprof.engines.tensorrt.inspector import as_number, decode_json
from scaleprof.engines.tensorrt.origins import InspectorLayerMap
from scaleprof.errors import BadInput


class LayerTimes:
    """Collects ``IProfiler.report_layer_time(name, ms)`` calls, iteration by iteration.

    ``next_iteration()`` opens an iteration (call it before each profiled execution). A layer
    reported twice in one iteration (a loop body) has its times summed. The first ``skip``
    iterations are warm-up and are dropped from the trace."""

    def __init__(self):
        self.order: list[str] = []
        self.iterations: list[dict[str, float]] = []

    def next_iteration(self) -> None:
        self.iterations.append({})

    def report(self, name: str, ms: float) -> None:
        if not self.iterations:
            self.next_iteration()
        current = self.iterations[-1]
        if name not in current and name not in self.order:
            self.order.append(name)
        current[name] = current.get(name, 0.0) + float(ms)

    def trace(self, layer_map=None, skip: int = 0) -> LayerTrace:
        kept = [it for it in self.iterations[skip:] if it]
        events = []
        for name in self.order:
            times = tuple(it[name] for it in kept if name in it)
            if times:
                events.append(layer_event(name, times, layer_map))
        return LayerTrace(tuple(events), len(kept), "tensorrt.IProfiler")


def layer_event(name: str, times: tuple[float, ...], layer_map=None) -> LayerEvent:
    """A LayerEvent for TensorRT layer ``name``: its ONNX nodes and opaqueness from ``layer_map``
    (an InspectorLayerMap, or any callable name -> (nodes, opaque); the map also gives the
    inspector's layer type)."""
    nodes, opaque = layer_map(name) if layer_map else ((), False)
    layer = layer_map.layer(name) if isinstance(layer_map, InspectorLayerMap) else None
    return LayerEvent(name, layer.layer_type if layer else "", times, tuple(nodes), bool(opaque))


@dataclass(frozen=True)
class ProfileRecord:
    name: str
    total_ms: float
    average_ms: float
    median_ms: float | None
    percentage: float


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def profile_records(trace: LayerTrace) -> list[dict]:
    """A LayerTrace in trtexec's --exportProfile format (what the engine explorer reads)."""
    total = sum(sum(e.times_ms) for e in trace.events) or 1.0
    out: list[dict] = [{"count": trace.iterations}]
    for e in trace.events:
        t = float(sum(e.times_ms))
        out.append({"name": e.name, "timeMs": t, "averageMs": t / max(trace.iterations, 1),
                    "medianMs": _median(e.times_ms), "percentage": t / total * 100.0})
    return out


def write_profile(trace: LayerTrace, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(profile_records(trace), indent=1) + "\n", encoding="utf-8")
    return path


def parse_profile(data) -> tuple[int, list[ProfileRecord]]:
    """(iteration count, records) from trtexec --exportProfile JSON (str/bytes or decoded)."""
    data = decode_json(data, "TensorRT profile")
    if not isinstance(data, list):
        raise BadInput("TensorRT profile JSON must be a list ([{\"count\": N}, {\"name\", \"timeMs\", ...}, ...])")
    count = None
    records = []
    for item in data:
        if not isinstance(item, Mapping):
            raise BadInput("TensorRT profile JSON holds a non-object entry")
        if "count" in item and "name" not in item:
            count = as_number(item["count"], "TensorRT profile count", int, minimum=0)
            continue
        if "name" not in item or "timeMs" not in item:
            raise BadInput(f"TensorRT profile entry without name/timeMs: {dict(item)!r:.120}")
        name = str(item["name"])

        def field(key, default=None):
            return as_number(item.get(key, default), f"TensorRT profile entry {name!r:.60} {key}", minimum=0)

        records.append(ProfileRecord(
            name=name, total_ms=field("timeMs"), average_ms=field("averageMs", 0.0),
            median_ms=field("medianMs") if "medianMs" in item else None, percentage=field("percentage", 0.0)))
    if count is None:
        raise BadInput("TensorRT profile JSON has no {\"count\": N} entry (is it trtexec --exportProfile output?)")
    return count, records


def profile_trace(data, layer_map=None, profiler: str = "trtexec") -> LayerTrace:
    """trtexec --exportProfile JSON -> a LayerTrace. The file holds only per-layer aggregates, so
    each event carries one time per iteration equal to the layer's median (average when the file
    has no median): the medians and means of the trace are the file's, the spread is not known."""
    count, records = parse_profile(data)
    iterations = max(count, 1)
    per_iteration = [r.median_ms if r.median_ms is not None else r.average_ms for r in records]
    events = tuple(layer_event(r.name, (ms,) * iterations, layer_map) for r, ms in zip(records, per_iteration))
    return LayerTrace(events, iterations, profiler)
