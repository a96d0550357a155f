"""`scaleprof ingest FILE.json...`: bring trtexec results into scaleprof.

Reads trtexec's ``--exportTimes`` (end-to-end times), ``--exportProfile`` (per-layer times) and
``--exportLayerInfo`` (the engine inspector's layer JSON) files, in any order (each file's kind is
recognised from its content), and prints latency statistics the way scaleprof's own profile stage
reports them plus the per-layer table, each layer mapped to its ONNX nodes (give ``--onnx`` so
Myelin regions expand to every node they cover). ``--json`` prints the same as JSON.

Times are GPU compute times (``computeMs``: what scaleprof's CUDA runners time, with no host
transfers); ``--latency host`` uses trtexec's ``latencyMs`` (H2D + compute + D2H) instead.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from scaleprof.tools.args import add_output_arguments, add_shape_arguments

NAME = "ingest"
HELP = "read trtexec --exportTimes/--exportProfile/--exportLayerInfo JSON: latency statistics and per-layer times"


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.json",
                        help="trtexec exports (--exportTimes, --exportProfile, --exportLayerInfo), any order")
    parser.add_argument("--onnx", help="the ONNX file the engine was built from (maps Myelin layers to all their nodes)")
    add_shape_arguments(parser, batch="batch size of the timed run (trtexec does not record it; default 1)")
    parser.add_argument("--latency", choices=("compute", "host"), default="compute",
                        help="compute: GPU compute time (default); host: trtexec's latencyMs incl. H2D/D2H")
    parser.add_argument("--top", type=int, default=15, help="layers to list, slowest first (default 15; 0: all)")
    add_output_arguments(parser)


MAX_FILE_BYTES = 256 << 20     # a trtexec export of a long profiling run is tens of MB
JSON_EXPANSION = 12            # bytes of Python objects per byte of JSON text, about


def _load(path: Path):
    from scaleprof.core.files import read_limited
    from scaleprof.core.limits import check_fits
    from scaleprof.errors import BadInput

    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BadInput(f"{path}: larger than {MAX_FILE_BYTES >> 20} MB, not a trtexec export")
    check_fits(path.stat().st_size * JSON_EXPANSION, f"reading {path}", "the parsed JSON",
               "not a trtexec export this machine can read")
    try:
        text = read_limited(path, MAX_FILE_BYTES, "trtexec export").decode("utf-8", errors="replace")
        return json.loads(text, strict=False)
    except json.JSONDecodeError as err:
        raise BadInput(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply, not a trtexec export") from None


def ingest(files, *, onnx: str | None = None, batch: int = 1, latency: str = "compute") -> dict:
    """The summary of a set of trtexec exports as a JSON-able dict: the profile stage's
    LatencyStats and LayerReport, as ``scaleprof profile`` reports them."""
    from scaleprof.core.limits import check_batch
    from scaleprof.engines.anchors import OnnxGraph
    from scaleprof.engines.tensorrt import inspector, origins, profiler
    from scaleprof.profile import trace_report

    check_batch(batch, "--batch")
    found = _by_kind(files)
    node_order = origins.onnx_node_order(onnx) if onnx else ()
    graph = inspector.parse_inspector(found["layer-info"][1]) if "layer-info" in found else None
    result: dict = {"files": {k: str(p) for k, (p, _) in found.items()}, "batch": batch}
    end_to_end = None
    if "times" in found:
        result.update(_latency(found["times"][1], batch, latency))
        end_to_end = result["latency"]["median"]
    if "profile" in found:
        trace = profiler.profile_trace(found["profile"][1], origins.InspectorLayerMap(graph, node_order))
        result["layers"] = _layer_summary(trace_report(trace, end_to_end, OnnxGraph(onnx) if onnx else None))
    if graph is not None:
        result["graph"] = origins.summarize_graph(graph, node_order)
    return result


def _by_kind(files) -> dict[str, tuple[Path, object]]:
    """Each file's kind (recognised from its content) -> (path, parsed JSON); one file per kind."""
    from scaleprof.engines.tensorrt import trtexec as tx
    from scaleprof.errors import BadInput

    found: dict[str, tuple[Path, object]] = {}
    for name in files:
        path = Path(name)
        data = _load(path)
        try:
            kind = tx.sniff(data)
        except BadInput as err:
            raise BadInput(f"{path}: {err}") from None
        if kind in found:
            raise BadInput(f"two {kind} files given ({found[kind][0]} and {path}); ingest one run at a time")
        found[kind] = (path, data)
    return found


def _latency(times, batch: int, latency: str) -> dict:
    """Latency statistics of an --exportTimes file, as scaleprof's profile stage reports them."""
    from scaleprof.engines.tensorrt import trtexec as tx
    from scaleprof.profile.stats import latency_stats

    trace = tx.parse_times(times)
    samples = trace.compute_ms if latency == "compute" else trace.latency_ms
    method = "trtexec-gpu-compute" if latency == "compute" else "trtexec-host-latency"
    stats = latency_stats(samples, batch=batch, total_s=trace.wall_s, timing_method=method)
    out = {"latency": stats.to_dict()}
    if trace.enqueue_ms:
        out["enqueue_ms_median"] = statistics.median(trace.enqueue_ms)
    return out


def _layer_summary(report) -> dict:
    """A LayerReport as JSON, its layers under "rows" with their count, and the share of layer time
    in opaque (Myelin) regions, whose inner split trtexec does not know."""
    summary = report.to_dict()
    rows = summary.pop("layers")
    opaque = sum(r.time_ms for r in report.layers if r.opaque)
    return {**summary, "count": len(rows), "rows": rows,
            "opaque_share": opaque / report.layer_sum_ms if report.layer_sum_ms else 0.0}


def _print(result: dict, top: int) -> None:
    print("trtexec results: " + ", ".join(f"{k} {v}" for k, v in result["files"].items()))
    lat = result.get("latency")
    if lat:
        lo, hi = lat["ci95"]
        print(f"latency ({lat['timing_method']}, batch {lat['batch']}, {lat['iterations']} runs): "
              f"median {lat['median']:.4f} ms [95% CI {lo:.4f}-{hi:.4f}], mean {lat['mean']:.4f}, "
              f"p90 {lat['p90']:.4f}, p99 {lat['p99']:.4f}, CV {lat['cv'] * 100:.2f}%, "
              f"{lat['throughput']:.1f} img/s")
        if lat["cv"] > 0.025:
            print("  note: CV above 2.5% (trtexec's own warning level): the GPU was not quiet")
    layers = result.get("layers")
    if layers:
        ratio, total = layers["overhead_ratio"], layers["layer_sum_ms"]
        print(f"layers: {layers['count']} over {layers['iterations']} iterations, sum of medians {total:.4f} ms"
              + (f" = {ratio:.2f}x end-to-end (per-layer profiling adds synchronisation)" if ratio else "")
              + f"; {layers['coverage'] * 100:.0f}% of layer time mapped to ONNX nodes, "
                f"{layers['opaque_share'] * 100:.0f}% in opaque (Myelin) regions")
        rows = sorted(layers["rows"], key=lambda r: -r["time_ms"])
        shown = rows if top <= 0 else rows[:top]
        width = min(60, max((len(r["name"]) for r in shown), default=10))
        for r in shown:
            nodes = r["onnx_nodes"]
            where = (f"{len(nodes)} nodes: {nodes[0]} .. {nodes[-1]}" if len(nodes) > 2
                     else ", ".join(nodes)) or "-"
            flag = " [opaque]" if r["opaque"] else ""
            name = r["name"] if len(r["name"]) <= width else r["name"][:width - 3] + "..."
            share = r["time_ms"] / total if total else 0.0
            print(f"  {r['time_ms']:9.4f} ms {share * 100:5.1f}%  {name:<{width}}  {where}{flag}")
        if len(rows) > len(shown):
            print(f"  ... {len(rows) - len(shown)} more (--top 0 lists all)")
    graph = result.get("graph")
    if graph:
        kinds = ", ".join(f"{k} {v}" for k, v in list(graph["by_type"].items())[:6])
        print(f"engine: {graph['layers']} layers ({kinds}); {graph['fused_layers']} fused, "
              f"{graph['opaque_layers']} opaque; {graph['onnx_nodes_covered']} ONNX nodes covered"
              + (f" of {graph['onnx_nodes']}" if graph.get("onnx_nodes") else "")
              + ("" if graph["detailed"] else " (built without --profilingVerbosity=detailed: names only)"))


def run(args) -> int:
    result = ingest(args.files, onnx=args.onnx, batch=args.batch, latency=args.latency)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result, args.top)
    return 0
