"""`scaleprof profile ENGINE_DIR|FILE.onnx --batch B --resolution R`: end-to-end latency with a
confidence interval, and with --per-layer a separate layer-profiling run mapped to ONNX nodes,
their predicted counts and the device roofline."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

from scaleprof.errors import BadInput
from scaleprof.tools.args import (
    add_engine_arguments,
    add_output_arguments,
    add_shape_arguments,
    add_timing_arguments,
    build_spec,
    check_shape_arguments,
    default_resolution,
    engine_arguments_given,
    timing_settings,
)

NAME = "profile"
HELP = "time an engine end to end (median, CI) and, with --per-layer, layer by layer against predicted counts"


def add_arguments(parser) -> None:
    parser.add_argument("target", metavar="ENGINE_DIR|FILE.onnx", nargs="+",
                        help="an engine directory (from `scaleprof build`) or an ONNX file (built through the cache); "
                             "several are timed in interleaved rounds, the first also as the control network")
    add_engine_arguments(parser, "how an ONNX file is built (an engine directory was built already)")
    add_shape_arguments(parser, batch="batch size (default 1)",
                        resolution="square input resolution (default: the engine's only one, or the model's own)")
    add_timing_arguments(parser)
    parser.add_argument("--per-layer", action="store_true", help="also profile layer by layer (a separate run)")
    parser.add_argument("--top", type=int, default=15, help="rows of the slowest-layers table (default 15)")
    parser.add_argument("--no-roofline", action="store_true", help="skip the device peak calibration")
    add_output_arguments(parser, out="output directory",
                         cache_dir="engine and calibration cache (default OUT/engines, OUT/cache)")


def _open(args, target: str):
    """(engine, shape) from an engine directory, or from an ONNX file built with the engine options."""
    from scaleprof.engines.backends import get_backend
    from scaleprof.engines.base import ShapePoint
    from scaleprof.engines.cache import build_engine, default_cache_dir, open_engine
    from scaleprof.engines.onnx_facts import read_facts
    from scaleprof.errors import EnvironmentProblem
    from scaleprof.export.rebuild import rebuild_model
    from scaleprof.profile.timing import check_engine_memory, check_memory

    target = Path(target)
    if target.is_dir():
        given = engine_arguments_given(args)
        if given:
            raise BadInput(f"{', '.join(given)}: how to build an ONNX file; {target} is an engine directory, "
                           "built already (`scaleprof inspect` shows how)")
        engine = open_engine(target, model_source=rebuild_model)
        shape = ShapePoint(args.batch, args.resolution or _only_resolution(engine))
        check_engine_memory(engine, shape)     # before any layer run; the ONNX file may have moved
        return engine, shape
    if not target.is_file():
        raise BadInput(f"{target}: no such engine directory or ONNX file")
    if target.suffix.lower() != ".onnx":
        raise BadInput(f"{target} is neither an engine directory nor an .onnx file")
    shape = ShapePoint(args.batch, args.resolution or default_resolution(target))
    spec = build_spec(args, (shape,), file_precision=read_facts(target).quantized)
    refusal = get_backend(spec.backend).run_refusal(spec.device)
    if refusal:                                      # before a build whose engine could not run here
        raise EnvironmentProblem(refusal)
    check_memory(target, shape, spec.precision)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir(args.out)
    return build_engine(target, spec, cache, model_source=rebuild_model).engine, shape


def _only_resolution(engine) -> int:
    resolutions = {p.resolution for p in engine.manifest.shapes}
    if len(resolutions) == 1 and not engine.manifest.ranges:
        return resolutions.pop()
    raise BadInput(f"engine {engine.directory} takes several resolutions: give --resolution")


def run(args) -> int:
    from scaleprof.profile.environment import environment_for
    from scaleprof.profile.timing import time_engine
    from scaleprof.profile.types import Measurement

    check_shape_arguments(args)
    if args.top <= 0:
        raise BadInput(f"--top must be positive, got {args.top}")
    settings = timing_settings(args)
    if len(args.target) > 1:
        return _run_several(args, settings)
    engine, shape = _open(args, args.target[0])
    with engine:
        latency = time_engine(engine, shape, settings)
        layers = _layers(engine, shape, latency.median, settings, args) if args.per_layer else None
    measurement = Measurement(latency=latency, environment=environment_for(engine), layers=layers)
    _warn_if_contended(latency)
    if args.json:
        print(json.dumps(measurement.to_dict(), indent=2))
    else:
        _print(engine, shape, measurement, args.top)
    return 0


def _run_several(args, settings) -> int:
    """Several engines timed in interleaved rounds (profile.timing.time_engines), then each one's
    layers where asked; one Measurement each, in the order given."""
    from scaleprof.profile.environment import environment_for
    from scaleprof.profile.timing import time_engines
    from scaleprof.profile.types import Measurement

    opened = [_open(args, target) for target in args.target]
    with ExitStack() as stack:
        for engine, _ in opened:
            stack.enter_context(engine)
        latencies = time_engines(opened, settings)
        layers = [_layers(engine, shape, lat.median, settings, args) if args.per_layer else None
                  for (engine, shape), lat in zip(opened, latencies)]
    measurements = [Measurement(latency=lat, environment=environment_for(engine), layers=rep)
                    for (engine, _), lat, rep in zip(opened, latencies, layers)]
    for lat in latencies:
        _warn_if_contended(lat)
    if args.json:
        print(json.dumps([m.to_dict() for m in measurements], indent=2))
    else:
        for (engine, shape), m in zip(opened, measurements):
            _print(engine, shape, m, args.top)
    return 0


def _warn_if_contended(latency) -> None:
    """One line on stderr when the timing could not be faithful (other processes took a share of
    the machine; in rounds, too few quiet ones)."""
    if latency.contended and latency.rounds:
        print(f"warning: measured under contention: {latency.rounds.get('reason')}; the figures may be off",
              file=sys.stderr)
    elif latency.contended:
        from scaleprof.profile.contention import Contention

        print(Contention.from_dict(latency.contention).warning(), file=sys.stderr)


def _layers(engine, shape, median, settings, args):
    from scaleprof.profile import engine_node_counts, engine_peaks, profile_layers

    counts = engine_node_counts(engine, shape.batch, shape.resolution)
    cache = Path(args.cache_dir) if args.cache_dir else Path(args.out) / "cache"
    peaks = None if args.no_roofline else engine_peaks(engine, cache)
    return profile_layers(engine, shape, counts, median, settings.layer_iters, peaks)


def _print(engine, shape, m, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    lat, env = m.latency, m.environment
    console.print(f"[bold]{engine.directory}[/]  {env.backend} {env.backend_version} on {env.device_name} "
                  f"({env.device}, threads {env.threads or 'default'}), input {shape}")
    console.print(f"latency  median {lat.median:.3f} ms  95% CI [{lat.ci95[0]:.3f}, {lat.ci95[1]:.3f}]  "
                  f"mean {lat.mean:.3f}  min {lat.min:.3f}  p90 {lat.p90:.3f}  p99 {lat.p99:.3f}  "
                  f"std {lat.std:.3f}  cv {lat.cv:.1%}")
    console.print(f"throughput {lat.throughput:.1f} img/s  ({lat.iterations} iterations in {lat.total_s:.1f} s, "
                  f"{lat.timing_method}; stopped: {lat.stop_reason})")
    if lat.rounds:
        console.print(f"rounds   {lat.rounds['kept']} kept, {lat.rounds['discarded']} discarded (interleaved with "
                      "the other engines; the first is the control)", markup=False, highlight=False)
    if lat.contention is not None and not lat.contended:
        from scaleprof.profile.contention import Contention

        console.print(f"quiet    {Contention.from_dict(lat.contention).summary()}", markup=False, highlight=False)
    if lat.cv > 0.025:
        console.print(f"[yellow]note: cv {lat.cv:.1%} is above 2.5%: the machine is noisy; trust the median and its CI[/]")
    rep = m.layers
    if rep is None:
        return
    ratio = f"{rep.overhead_ratio:.2f}" if rep.overhead_ratio else "-"
    iteration = f"{rep.iteration_ms:.3f} ms" if rep.iteration_ms else "-"
    console.print(f"layers   {len(rep.layers)} rows, sum of layer medians {rep.layer_sum_ms:.3f} ms over "
                  f"{rep.iterations} profiled iterations ({rep.profiler}); profiled iteration (median) {iteration}, "
                  f"/ end-to-end median = {ratio} (overhead ratio); coverage {rep.coverage:.1%}")
    table = Table(title=f"top {top} slowest layers", show_lines=False)
    for col in ("layer", "category", "ms", "share", "MFLOPs", "acts (k)", "GFLOP/s", "GB/s", "bound", "attain"):
        table.add_column(col, justify="left" if col in ("layer", "category", "bound") else "right")
    for row in sorted(rep.layers, key=lambda r: -r.time_ms)[:top]:
        name = row.name if len(row.name) <= 48 else "…" + row.name[-47:]
        table.add_row(name, row.category, f"{row.time_ms:.3f}", f"{row.time_ms / rep.layer_sum_ms:.1%}",
                      f"{row.flops / 1e6:.1f}", f"{row.acts / 1e3:.0f}",
                      f"{row.flops_per_s / 1e9:.1f}" if row.flops_per_s else "-",
                      f"{row.bytes_per_s / 1e9:.1f}" if row.bytes_per_s else "-",
                      row.bound or "-", f"{row.attainment:.0%}" if row.attainment else "-")
    console.print(table)
    cats = "  ".join(f"{k} {v['share']:.0%}" for k, v in rep.by_category.items() if v["time_ms"] > 0)
    console.print(f"by category: {cats}")
    console.print("counts: pycls conventions (flops = multiply-adds), per batch")
