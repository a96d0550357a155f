"""TensorRT's layer JSON and per-layer times, read and written without TensorRT.

Formats (TensorRT docs; trtexec's sampleReporting; NVIDIA's trt-engine-explorer):

- Inspector / ``trtexec --exportLayerInfo`` JSON (``IEngineInspector.get_engine_information(
  LayerInformationFormat.JSON)``) of an engine built with ``ProfilingVerbosity.DETAILED``:
  ``{"Layers": [{"Name", "LayerType", "Inputs": [...], "Outputs": [...], "TacticName",
  "Metadata", ...}], "Bindings": [names]}`` in TensorRT 10; TensorRT 11 replaces ``Bindings`` by
  ``"I/O Tensors"`` (objects with ``Name``, ``IOMode``, ...) and splits each tensor's
  ``Format/Datatype`` into ``Format`` and ``DataType``. Without DETAILED, ``Layers`` is a list of
  names only. Layers of optimisation profile k > 0 carry a `` [profile k]`` name suffix.
- ``Metadata`` lists the ONNX nodes a layer implements as ``[ONNX Layer: NAME]`` entries
  separated by the control characters 0x1F or 0x1E.
- Fused layer names join the ONNX layer names with ``" + "``; pointwise fusions read
  ``PWN(a, PWN(b, c))``; Myelin (the graph compiler) regions read
  ``{ForeignNode[FIRST...LAST]}``, naming only the first and last ONNX node they swallow.
- ``trtexec --exportProfile`` JSON: ``[{"count": N}, {"name", "timeMs", "averageMs",
  "medianMs", "percentage"}, ...]`` (older trtexec: no ``medianMs``). trtexec writes names
  unescaped, so control characters may appear raw: the reader is lenient about them.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from scaleprof.engines.base import LayerEvent, LayerTrace
from scaleprof.errors import BadInput

_PROFILE_SUFFIX = re.compile(r"\s*\[profile\s+(\d+)\]\s*$")
_FOREIGN = re.compile(r"^\{ForeignNode\[(.*)\]\}$", re.S)
# an entry ends at the ']' followed by a separator, the next entry or the end ('[' may occur in names)
_META_ENTRY = re.compile(r"\[ONNX Layer:\s*(.*?)\](?=\s*(?:[\x1e\x1f]|\[ONNX Layer:|$))", re.S)
OPAQUE_TYPES = {"myelin", "foreignnode"}
NO_NODE_TYPES = {"reformat", "noop", "signal", "wait", "shuffle"}   # engine bookkeeping layers


def decode_json(data, what: str):
    """``data`` decoded when it is JSON text (str or bytes; raw control characters allowed, as
    trtexec writes them), else as given. Text that is not JSON is a BadInput naming ``what``."""
    if not isinstance(data, (str, bytes)):
        return data
    try:
        return json.loads(data, strict=False)
    except json.JSONDecodeError as err:
        raise BadInput(f"{what} is not JSON: {err}") from None


def as_number(value, what: str, kind=float):
    """``kind(value)``; a value that is no number is a BadInput naming ``what``."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise BadInput(f"{what} is not a number: {value!r:.60}") from None


# --- inspector JSON ------------------------------------------------------------------------

@dataclass(frozen=True)
class InspectorLayer:
    name: str
    layer_type: str                    # "CaskConvolution", "Myelin", "Reformat", ...
    parameter_type: str = ""           # "Convolution", "Pooling", ... (DETAILED only)
    metadata_nodes: tuple[str, ...] = ()
    tactic: str = ""
    inputs: tuple[dict, ...] = ()
    outputs: tuple[dict, ...] = ()
    profile: int = 0                   # optimisation profile index (from the name suffix)
    raw: Mapping = field(default_factory=dict, compare=False, repr=False)

    @property
    def base_name(self) -> str:
        return strip_profile(self.name)[0]


@dataclass(frozen=True)
class InspectorGraph:
    layers: tuple[InspectorLayer, ...]
    io_tensors: tuple[str, ...]
    detailed: bool                     # False when built without ProfilingVerbosity.DETAILED
    schema: str                        # "trt10" (Bindings) or "trt11" (I/O Tensors)

    def profile_layers(self, profile: int = 0) -> tuple[InspectorLayer, ...]:
        return tuple(layer for layer in self.layers if layer.profile == profile)

    def by_name(self) -> dict[str, InspectorLayer]:
        return {layer.name: layer for layer in self.layers}


def strip_profile(name: str) -> tuple[str, int]:
    """'conv1 + relu1 [profile 2]' -> ('conv1 + relu1', 2); no suffix is profile 0."""
    m = _PROFILE_SUFFIX.search(name)
    return (name[:m.start()], int(m.group(1))) if m else (name, 0)


def metadata_nodes(metadata) -> tuple[str, ...]:
    """ONNX node names from a layer's ``Metadata`` ('[ONNX Layer: a]\\x1f[ONNX Layer: b]')."""
    if not metadata:
        return ()
    if isinstance(metadata, (list, tuple)):
        return tuple(dict.fromkeys(n for m in metadata for n in metadata_nodes(m)))
    return tuple(dict.fromkeys(m.strip() for m in _META_ENTRY.findall(str(metadata))))


def _tensor_info(t) -> dict:
    if not isinstance(t, Mapping):
        return {"Name": str(t)}
    info = dict(t)
    if "Format/Datatype" in info and "DataType" not in info:     # TensorRT 10 spelling
        info["DataType"] = info["Format/Datatype"]
    return info


def parse_inspector(data) -> InspectorGraph:
    """An InspectorGraph from the inspector's JSON (a str, bytes or the decoded object)."""
    data = decode_json(data, "TensorRT layer information")
    if not isinstance(data, Mapping) or not isinstance(data.get("Layers"), list):
        raise BadInput("TensorRT layer information has no 'Layers' list "
                       "(expected IEngineInspector / trtexec --exportLayerInfo JSON)")
    layers = []
    detailed = True
    for raw in data["Layers"]:
        if isinstance(raw, str):                 # LAYER_NAMES_ONLY verbosity
            detailed = False
            raw = {"Name": raw, "LayerType": ""}
        if not isinstance(raw, Mapping) or "Name" not in raw:
            raise BadInput("TensorRT layer information has a layer without a 'Name'")
        name = str(raw["Name"])
        layers.append(InspectorLayer(
            name=name,
            layer_type=str(raw.get("LayerType", "")),
            parameter_type=str(raw.get("ParameterType", "")),
            metadata_nodes=metadata_nodes(raw.get("Metadata")),
            tactic=str(raw.get("TacticName", "")),
            inputs=tuple(_tensor_info(t) for t in raw.get("Inputs", ()) or ()),
            outputs=tuple(_tensor_info(t) for t in raw.get("Outputs", ()) or ()),
            profile=strip_profile(name)[1],
            raw=raw,
        ))
    if "I/O Tensors" in data:
        io = tuple(str(t.get("Name", "")) if isinstance(t, Mapping) else str(t) for t in data["I/O Tensors"])
        schema = "trt11"
    else:
        io = tuple(str(b) for b in data.get("Bindings", ()) or ())
        schema = "trt10"
    return InspectorGraph(tuple(layers), io, detailed, schema)


def read_inspector(path: str | Path) -> InspectorGraph:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BadInput(f"no such layer information file: {path}") from None
    return parse_inspector(text)


# --- layer -> ONNX nodes -------------------------------------------------------------------

def _split_fused(name: str) -> list[str]:
    """Candidate ONNX names inside a fused TensorRT layer name: 'A + B', 'PWN(A, PWN(B, C))'."""
    out: list[str] = []
    for part in name.split(" + "):
        part = part.strip()
        m = re.match(r"^PWN\((.*)\)$", part, re.S)
        if m:
            depth, start = 0, 0
            inner = m.group(1)
            for i, ch in enumerate(inner):
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                elif ch == "," and depth == 0:
                    out += _split_fused(inner[start:i])
                    start = i + 1
            out += _split_fused(inner[start:])
        elif part:
            out.append(part)
    return out


def foreign_node_span(name: str, node_order: Sequence[str]) -> tuple[str, ...] | None:
    """All ONNX nodes a Myelin '{ForeignNode[FIRST...LAST]}' layer covers, in ``node_order``
    (the ONNX graph's topological node list): FIRST through LAST inclusive. None when ``name``
    is not a ForeignNode; () when its ends are not in ``node_order``."""
    m = _FOREIGN.match(strip_profile(name)[0].strip())
    if not m:
        return None
    body = m.group(1)
    index = {n: i for i, n in enumerate(node_order)}
    if body in index:
        return (body,)
    # '...' may also occur inside a node name: try every split point, keep one whose halves are nodes
    for pos in [m.start() for m in re.finditer(r"(?=\.\.\.)", body)]:
        first, last = body[:pos], body[pos + 3:]
        if first in index and last in index:
            lo, hi = sorted((index[first], index[last]))
            return tuple(node_order[lo:hi + 1])
    return ()


@dataclass(frozen=True)
class Resolution:
    onnx_nodes: tuple[str, ...]
    opaque: bool                      # a fused region whose inner split is unknown (Myelin)
    how: str                          # "metadata", "foreign-node", "name", "none"


def resolve_layer(name: str, layer: InspectorLayer | None = None,
                  node_order: Sequence[str] = ()) -> Resolution:
    """Map one TensorRT layer to the ONNX nodes it executes.

    1. The inspector's ``Metadata`` ONNX layer list, when present (DETAILED builds);
    2. a Myelin ``{ForeignNode[FIRST...LAST]}`` name: every ONNX node from FIRST to LAST in the
       graph's node order, flagged opaque;
    3. the fused name ('A + B', 'PWN(A, B)'), keeping the parts that are ONNX node names
       (all parts when ``node_order`` is empty);
    reformatting / copy layers map to no node.
    Myelin layers are opaque whichever rule mapped them.
    """
    base = strip_profile(name)[0]
    ltype = (layer.layer_type if layer else "").lower()
    opaque = ltype in OPAQUE_TYPES or base.startswith("{ForeignNode[") or base.startswith("__myl")
    known = set(node_order)
    if layer is not None and layer.metadata_nodes:
        nodes = layer.metadata_nodes
        span = foreign_node_span(base, node_order) if node_order else None
        if span and len(span) > len(nodes):        # metadata can list only the region's ends
            nodes = tuple(dict.fromkeys(nodes + span))
        return Resolution(nodes, opaque, "metadata")
    span = foreign_node_span(base, node_order)
    if span is not None:
        if not span and not node_order:            # no graph to expand against: keep the ends
            body = _FOREIGN.match(base.strip()).group(1)
            span = tuple(p for p in body.split("...") if p)
        return Resolution(span, True, "foreign-node")
    if ltype in NO_NODE_TYPES or base.startswith("Reformatting CopyNode") or "copy" == base.lower():
        return Resolution((), opaque, "none")
    parts = _split_fused(base)
    nodes = tuple(dict.fromkeys(p for p in parts if (p in known or not known)))
    return Resolution(nodes, opaque, "name" if nodes else "none")


class LayerResolver:
    """Backend-specific resolver for scaleprof.profile: layer name -> (ONNX nodes, opaque).

    Built from an engine's inspector JSON and the ONNX graph's node order; looks a profiled
    layer up by its full name, then without its ``[profile k]`` suffix."""

    def __init__(self, graph: InspectorGraph | None = None, node_order: Sequence[str] = ()):
        self.graph = graph
        self.node_order = tuple(node_order)
        self._layers = graph.by_name() if graph else {}
        self._base = {}
        for layer in (graph.layers if graph else ()):
            self._base.setdefault(layer.base_name, layer)

    def layer(self, name: str) -> InspectorLayer | None:
        return self._layers.get(name) or self._base.get(strip_profile(name)[0])

    def resolve(self, name: str) -> Resolution:
        return resolve_layer(name, self.layer(name), self.node_order)

    def __call__(self, name: str) -> tuple[tuple[str, ...], bool]:
        r = self.resolve(name)
        return r.onnx_nodes, r.opaque


def onnx_node_order(onnx_path: str | Path) -> tuple[str, ...]:
    """Node names of an ONNX graph in file order (topological for a valid model); weights are
    not loaded."""
    from scaleprof.core.onnx_file import load_model

    return tuple(n.name for n in load_model(onnx_path, load_weights=False).graph.node)


# --- per-layer times -----------------------------------------------------------------------

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

    def trace(self, resolver=None, skip: int = 0) -> LayerTrace:
        kept = [it for it in self.iterations[skip:] if it]
        events = []
        for name in self.order:
            times = tuple(it[name] for it in kept if name in it)
            if times:
                events.append(_event(name, times, resolver))
        return LayerTrace(tuple(events), len(kept), "tensorrt.IProfiler")


def _event(name: str, times: tuple[float, ...], resolver=None) -> LayerEvent:
    """A LayerEvent for TensorRT layer ``name``: its ONNX nodes and opaqueness from ``resolver``
    (a LayerResolver also gives the inspector's layer type)."""
    nodes, opaque = resolver(name) if resolver else ((), False)
    layer = resolver.layer(name) if isinstance(resolver, LayerResolver) else None
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
            count = as_number(item["count"], "TensorRT profile count", int)
            continue
        if "name" not in item or "timeMs" not in item:
            raise BadInput(f"TensorRT profile entry without name/timeMs: {dict(item)!r:.120}")
        name = str(item["name"])

        def field(key, default=None):
            return as_number(item.get(key, default), f"TensorRT profile entry {name!r:.60} {key}")

        records.append(ProfileRecord(
            name=name, total_ms=field("timeMs"), average_ms=field("averageMs", 0.0),
            median_ms=field("medianMs") if "medianMs" in item else None, percentage=field("percentage", 0.0)))
    if count is None:
        raise BadInput("TensorRT profile JSON has no {\"count\": N} entry (is it trtexec --exportProfile output?)")
    return count, records


def profile_trace(data, resolver=None, profiler: str = "trtexec") -> LayerTrace:
    """trtexec --exportProfile JSON -> a LayerTrace. The file holds only per-layer aggregates, so
    each event carries one time per iteration equal to the layer's median (average when the file
    has no median): the medians and means of the trace are the file's, the spread is not known."""
    count, records = parse_profile(data)
    iterations = max(count, 1)
    per_iteration = [r.median_ms if r.median_ms is not None else r.average_ms for r in records]
    events = tuple(_event(r.name, (ms,) * iterations, resolver) for r, ms in zip(records, per_iteration))
    return LayerTrace(events, iterations, profiler)


def summarize_graph(graph: InspectorGraph, node_order: Sequence[str] = (), profile: int = 0) -> dict:
    """Counts for a report: layers, by type, fused and opaque layers, ONNX node coverage."""
    layers = graph.profile_layers(profile) or graph.layers
    resolver = LayerResolver(graph, node_order)
    by_type: dict[str, int] = {}
    covered: set[str] = set()
    opaque = fused = 0
    for layer in layers:
        by_type[layer.layer_type or "?"] = by_type.get(layer.layer_type or "?", 0) + 1
        r = resolver.resolve(layer.name)
        covered.update(r.onnx_nodes)
        opaque += r.opaque
        fused += len(r.onnx_nodes) > 1
    return {"layers": len(layers), "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "fused_layers": fused, "opaque_layers": opaque, "onnx_nodes_covered": len(covered),
            "onnx_nodes": len(node_order) or None, "detailed": graph.detailed, "schema": graph.schema}


def unsupported_nodes(nodes: Iterable[tuple[str, str]], supports) -> list[tuple[str, str]]:
    """(name, op_type) of the ONNX nodes whose operator ``supports(op_type)`` rejects
    (OnnxParser.supports_operator), in graph order."""
    seen: dict[str, bool] = {}
    out = []
    for name, op in nodes:
        if op not in seen:
            seen[op] = bool(supports(op))
        if not seen[op]:
            out.append((name, op))
    return out


def profile_resolver_class():
    """scaleprof.profile.mapping's resolver for TensorRT layers: the layer's own ``onnx_nodes``
    (inspector Metadata, filled in by the backend), else its fused name ('A + PWN(B, C)', with
    any ``[profile k]`` suffix dropped), else a Myelin ``{ForeignNode[FIRST...LAST]}`` expanded
    over the exported graph's node order."""
    from scaleprof.profile.mapping import Resolver

    class TensorRTResolver(Resolver):
        name = "tensorrt"

        def name_parts(self, name: str) -> list[str]:
            return _split_fused(strip_profile(name)[0])

        def resolve(self, event):
            res = super().resolve(event)
            if not res.anchors:
                for node in resolve_layer(event.name, None, tuple(self.graph.order)).onnx_nodes:
                    self._add(res, node)
            return res

    return TensorRTResolver
