"""Layer-by-layer profile: the backend's profiler run (separate from end-to-end timing), each
layer mapped to the exported ONNX nodes it executes and their predicted counts, and a roofline."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaleprof.complexity import count_onnx
from scaleprof.engines.anchors import OnnxGraph
from scaleprof.engines.shapes import check_accepts
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.profile.categories import CATEGORIES, COUNTED_OPS, categorise, se_nodes
from scaleprof.profile.mapping import assign
from scaleprof.profile.roles import detector_roles
from scaleprof.profile.timing import MAX_SECONDS
from scaleprof.profile.types import LayerReport, LayerRow

NOT_EXECUTED = "(not executed: constant-folded or eliminated)"


def node_counts(counts) -> dict[str, tuple[int, int, int]]:
    """Per-node (flops, params, acts) per image from a complexity Counts (layers named by ONNX
    node), a {name: LayerCount} or a {name: (flops, params, acts)} mapping."""
    if counts is None:
        return {}
    if hasattr(counts, "layers"):
        return {c.name: (int(c.flops), int(c.params), int(c.acts)) for c in counts.layers}
    out = {}
    for name, c in dict(counts).items():
        out[name] = (int(c.flops), int(c.params), int(c.acts)) if hasattr(c, "flops") else tuple(int(v) for v in c)
    return out


_ELEM_BYTES = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}


def tensor_bytes(graph: OnnxGraph, dims: tuple[int, ...]) -> dict[str, int]:
    """Bytes of every tensor of the exported graph with its image input at ``dims`` (ONNX shape
    inference with data propagation; tensors whose size stays unknown are left out)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(graph.model)
    del model.graph.value_info[:]
    for inp in model.graph.input:
        if inp.name in graph.graph_inputs and len(inp.type.tensor_type.shape.dim) == len(dims):
            for d, v in zip(inp.type.tensor_type.shape.dim, dims):
                d.ClearField("dim_param")
                d.dim_value = v
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:   # noqa: BLE001 -- unusual graphs: roofline bytes become unknown, nothing else
        return {}
    sizes = {}
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        t = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if shape and None not in shape:
            sizes[vi.name] = int(np.prod(shape)) * _ELEM_BYTES.get(t.elem_type, 4)
    for init in graph.model.graph.initializer:
        sizes[init.name] = int(np.prod(init.dims)) * _ELEM_BYTES.get(init.data_type, 4)
    return sizes


def layer_bytes(graph: OnnxGraph, members: set[str], sizes: dict[str, int]) -> int | None:
    """Bytes a fused layer must move at least: tensors it reads from outside (weights included)
    plus tensors it writes that leave it. None when a size is unknown."""
    if not members or not sizes:
        return None
    produced = {t for m in members for t in graph.outputs(m)}
    reads = {t for m in members for t in graph.inputs(m) if t not in produced}
    writes = {t for t in produced
              if t in graph.graph_outputs or any(c not in members for c in graph.consumers.get(t, ()))}
    reads = {t for t in reads if not (t in graph.producer and graph.producer[t] in graph.constant)
             or t in sizes}
    try:
        return sum(sizes[t] for t in reads | writes)
    except KeyError:
        return None


def exported_model_path(engine) -> Path:
    path = Path(engine.manifest.onnx_path)
    if not path.is_file():
        raise EnvironmentProblem(f"the ONNX file engine {engine.directory} was built from, {path}, is gone: "
                                 "the layer map needs it (rebuild the engine from the exported file)")
    return path


def engine_node_counts(engine, batch: int, resolution: int) -> dict[str, tuple[int, int, int]]:
    """Per-node counts per image of the ONNX file ``engine`` was built from, counted at ``batch``
    (a file with a static batch counts only at its own) and ``resolution``."""
    return node_counts(count_onnx(exported_model_path(engine), batch=batch, resolution=resolution))


def profile_layers(engine, shape, onnx_counts=None, end_to_end_ms: float | None = None,
                   iterations: int = 20, peaks=None) -> LayerReport:
    """Run the engine's layer profiler at ``shape`` and map every layer to ONNX nodes and counts.

    ``onnx_counts``: per-ONNX-node counts per image (scaleprof.complexity); ``end_to_end_ms``: the
    median of a separate end-to-end run, for the overhead ratio; ``peaks``: a DevicePeaks for the
    roofline columns (None: left empty)."""
    if not isinstance(iterations, int) or iterations <= 0:
        raise BadInput(f"layer-profiling iterations must be positive, got {iterations!r}")
    _check_duration(iterations, end_to_end_ms)
    check_accepts(engine, shape)
    engine.load()
    trace = engine.profile_layers(shape, iterations)
    if not trace.events:
        raise EnvironmentProblem(f"the {trace.profiler} profiler produced no layer events for engine "
                                 f"{engine.directory} at {shape}")
    graph = OnnxGraph(exported_model_path(engine))
    resolver = engine.layer_resolver(graph)
    return build_report(trace, graph, resolver, node_counts(onnx_counts), shape, end_to_end_ms, peaks)


def _check_duration(iterations: int, end_to_end_ms: float | None) -> None:
    """BadInput when the profiled iterations, at the end-to-end median, would take over the bound."""
    if end_to_end_ms and iterations * end_to_end_ms / 1e3 > MAX_SECONDS:
        raise BadInput(f"{iterations} layer-profiling iterations at {end_to_end_ms:.3g} ms each would take about "
                       f"{iterations * end_to_end_ms / 1e3:.0f} s, above the {MAX_SECONDS:g} s one timing may take: "
                       "ask for fewer iterations")


class CountTable:
    """Per-node counts per image -> a layer's counts per batch, and whether a layer's are known."""

    def __init__(self, graph: OnnxGraph, counts: dict, batch: int):
        self.graph, self.counts, self.batch = graph, counts, batch

    def summed(self, nodes) -> tuple[int, int, int]:
        """(flops, params, acts) of ``nodes`` for one batch (params once: weights are shared)."""
        f = p = q = 0
        for n in nodes:
            c = self.counts.get(n)
            if c:
                f += c[0] * self.batch
                p += c[1]
                q += c[2] * self.batch
        return f, p, q

    def known(self, nodes) -> bool:
        """Attributed to nodes with counts: every countable member has an entry in the table."""
        return bool(nodes) and bool(self.counts) and all(
            n in self.counts or self.graph.nodes[n].op_type not in COUNTED_OPS for n in nodes)


def build_report(trace, graph: OnnxGraph, resolver, counts: dict, shape, end_to_end_ms=None,
                 peaks=None) -> LayerReport:
    """The pure part of profile_layers: trace + graphs + counts -> rows (tested on real traces)."""
    a = assign(trace.events, graph, resolver)
    members: dict[int, list[str]] = defaultdict(list)
    for node in graph.order:
        if node in a.owner:
            members[a.owner[node]].append(node)
    se = se_nodes(graph)
    roles = detector_roles(graph)
    sizes = tensor_bytes(graph, shape.dims()) if peaks is not None else {}
    table = CountTable(graph, counts, shape.batch)
    rows = []
    covered = 0.0
    for i, event in enumerate(trace.events):
        helper = i in a.helpers
        nodes = members.get(a.helpers[i] if helper else i, [])
        rows.append(_layer_row(event, nodes, helper, graph, (se, roles), sizes, table))
        if table.known(nodes):
            covered += rows[-1].time_ms
    peaks = raise_peaks(peaks, rows)
    rows = [_roofline(r, peaks) for r in rows]
    if a.not_executed:
        flops, params, acts = table.summed(a.not_executed)
        rows.append(LayerRow(name=NOT_EXECUTED, onnx_nodes=tuple(a.not_executed), op_type="-", category="not executed",
                             time_ms=0.0, mean_ms=0.0, flops=flops, params=params, acts=acts,
                             status="not-executed"))
    layer_sum = sum(r.time_ms for r in rows)
    totals = dict(zip(("flops", "params", "acts"), table.summed(graph.order)))
    return LayerReport(layers=tuple(rows), layer_sum_ms=layer_sum, end_to_end_ms=end_to_end_ms,
                       coverage=covered / layer_sum if layer_sum > 0 else 0.0, profiler=trace.profiler,
                       iterations=trace.iterations, totals=totals, by_category=by_category(rows, layer_sum),
                       device_peaks=peaks.to_dict() if peaks is not None else None,
                       layer_sum_mean_ms=sum(r.mean_ms for r in rows), iteration_ms=iteration_median(trace))


def trace_report(trace, end_to_end_ms: float | None = None, graph: OnnxGraph | None = None) -> LayerReport:
    """The LayerReport of a trace measured elsewhere (trtexec's exports), whose events name their ONNX
    nodes themselves and which has no counts: ``coverage`` is the share of layer time mapped to ONNX
    nodes; ``graph`` (the ONNX file the engine was built from), where known, gives the categories."""
    se, roles = (se_nodes(graph), detector_roles(graph)) if graph is not None else (set(), {})
    rows = []
    for e in trace.events:
        members = [n for n in e.onnx_nodes if graph is not None and n in graph.nodes]
        rows.append(LayerRow(name=e.name, onnx_nodes=tuple(e.onnx_nodes), op_type=e.op_type,
                             category=categorise(graph, members, se, e.op_type, roles),
                             time_ms=statistics.median(e.times_ms), mean_ms=sum(e.times_ms) / len(e.times_ms),
                             flops=0, params=0, acts=0, opaque=e.opaque))
    layer_sum = sum(r.time_ms for r in rows)
    mapped = sum(r.time_ms for r in rows if r.onnx_nodes)
    return LayerReport(layers=tuple(rows), layer_sum_ms=layer_sum, end_to_end_ms=end_to_end_ms,
                       coverage=mapped / layer_sum if layer_sum > 0 else 0.0, profiler=trace.profiler,
                       iterations=trace.iterations, by_category=by_category(rows, layer_sum),
                       layer_sum_mean_ms=sum(r.mean_ms for r in rows), iteration_ms=iteration_median(trace))


def _layer_row(event, nodes: list[str], helper: bool, graph: OnnxGraph, kinds: tuple[set, dict], sizes: dict,
               table: CountTable) -> LayerRow:
    """One row: a measured layer with the counts of the nodes it executes, or a helper, timed and
    attributed to the nodes of the layer it serves, with no counts of its own. ``kinds``: the graph's
    SE nodes and detector roles, for the category."""
    se, roles = kinds
    times = np.asarray(event.times_ms, dtype=float)
    median = float(np.median(times)) if times.size else 0.0
    mean = float(times.mean()) if times.size else 0.0
    if helper:
        flops = params = acts = 0
        category = categorise(graph, [], se, event.op_type)
        nbytes = None
    else:
        flops, params, acts = table.summed(nodes)
        category = categorise(graph, nodes, se, event.op_type, roles)
        nbytes = layer_bytes(graph, set(nodes), sizes)          # None without peaks: sizes is {}
    return LayerRow(name=event.name, onnx_nodes=tuple(nodes), op_type=event.op_type, category=category,
                    time_ms=median, mean_ms=mean, flops=flops, params=params, acts=acts,
                    opaque=bool(getattr(event, "opaque", False)), status="helper" if helper else "measured",
                    bytes=nbytes)


def iteration_median(trace) -> float | None:
    """Median over profiled iterations of the summed layer times of each iteration (an event with
    one time per iteration adds that time; any other adds its mean to every iteration)."""
    n = trace.iterations
    if n <= 0 or not trace.events:
        return None
    totals = [0.0] * n
    for event in trace.events:
        times = list(event.times_ms)
        if len(times) == n:
            totals = [t + x for t, x in zip(totals, times)]
        elif times:
            totals = [t + sum(times) / n for t in totals]
    return statistics.median(totals)


def raise_peaks(peaks, rows):
    """A rate a layer really achieved is a lower bound on the device's peak: when the calibration
    (taken on a busy machine, say) is below it, use the achieved rate and say so in ``method``."""
    if peaks is None:
        return None
    timed = [r for r in rows if r.status == "measured" and r.time_ms > 0]
    best_macs = max((r.flops / (r.time_ms / 1e3) for r in timed), default=0.0)
    best_bytes = max((r.bytes / (r.time_ms / 1e3) for r in timed if r.bytes), default=0.0)
    notes = []
    if best_macs > peaks.macs_per_s:
        notes.append(f"compute raised from {peaks.macs_per_s / 1e9:.1f} G/s to the best layer's rate")
        peaks = replace(peaks, macs_per_s=best_macs)
    if best_bytes > peaks.bytes_per_s:
        notes.append(f"bandwidth raised from {peaks.bytes_per_s / 1e9:.1f} GB/s to the best layer's rate")
        peaks = replace(peaks, bytes_per_s=best_bytes)
    return replace(peaks, method=peaks.method + "; " + "; ".join(notes)) if notes else peaks


def _roofline(row: LayerRow, peaks) -> LayerRow:
    if peaks is None or row.time_ms <= 0 or row.status != "measured":
        return row
    seconds = row.time_ms / 1e3
    bound_ms, bound = peaks.bound(row.flops, row.bytes)
    return replace(row, flops_per_s=row.flops / seconds,
                   bytes_per_s=row.bytes / seconds if row.bytes is not None else None,
                   roofline_ms=bound_ms, bound=bound if (row.flops or row.bytes) else None,
                   attainment=bound_ms / row.time_ms if (row.flops or row.bytes) else None)


def by_category(rows, layer_sum: float) -> dict:
    out = {}
    for cat in CATEGORIES:
        chosen = [r for r in rows if r.category == cat]
        if not chosen:
            continue
        t = sum(r.time_ms for r in chosen)
        out[cat] = {"time_ms": t, "share": t / layer_sum if layer_sum else 0.0, "layers": len(chosen),
                    "flops": sum(r.flops for r in chosen), "params": sum(r.params for r in chosen),
                    "acts": sum(r.acts for r in chosen)}
    return out
