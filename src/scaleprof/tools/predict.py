"""scaleprof predict MODEL --strategy S --scale s --target T: a configuration's latency on a calibrated
target, from its counts alone (nothing is exported or run), with an interval and extrapolation warnings.
scaleprof predict FILE.onnx --target T: any network's latency from its graph, kernel by kernel, as the
target's runtime would execute it (needs `scaleprof calibrate --kernels --target T`)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

NAME = "predict"
HELP = ("predict a zoo configuration's latency from its counts, or any ONNX file's from its kernels, on a "
        "calibrated target, with an interval")


def add_arguments(parser) -> None:
    from scaleprof.tools.args import (
        add_calibration_arguments,
        add_model_arguments,
        add_output_arguments,
        add_shape_arguments,
    )

    add_model_arguments(parser, model_help="base model, a timm name (see `scaleprof models`), or an ONNX file")
    add_calibration_arguments(parser)
    add_shape_arguments(parser, batch="batch size (default 1)", batch_default=None,
                        resolution="input size (default: what the strategy chose, or the file's own)")
    group = parser.add_argument_group("kernel prediction (ONNX files)")
    group.add_argument("--per-layer", action="store_true",
                       help="each kernel's features, predicted time and share of the latency")
    group.add_argument("--strict", action="store_true",
                       help="refuse, instead of warning, when a kernel's kind was never calibrated")
    group.add_argument("--measure", action="store_true",
                       help="with --per-layer: also run the file here under ONNX Runtime's profiler and print each "
                            "kernel's measured time beside its prediction (this machine must be the target)")
    add_output_arguments(parser)


def query_from(args):
    """The Query that MODEL/--strategy/--alpha/--scale/--phi/--batch/--resolution describe."""
    from scaleprof.errors import BadInput
    from scaleprof.models import family_of, parse_strategy
    from scaleprof.models.strategies import check_scale, scale_of_phi
    from scaleprof.predict import Query
    from scaleprof.tools.args import check_shape_arguments

    family_of(args.model)                                    # unknown model: one line
    check_shape_arguments(args, args.model)
    scale = args.scale
    if args.phi is not None:
        if args.strategy != "en" or scale is not None or not math.isfinite(args.phi):
            raise BadInput("--phi applies only to --strategy en, instead of --scale, as a finite number")
        scale = scale_of_phi(args.phi)
    if args.strategy is None and (scale is not None or args.alpha is not None):
        raise BadInput("--scale/--alpha need a --strategy (e.g. --strategy dWr --scale 4)")
    if args.strategy is not None:
        strategy = parse_strategy(args.strategy, args.alpha)
        if scale is None:
            raise BadInput(f"--strategy {args.strategy} needs --scale F (a flops factor > 0)")
        check_scale(scale)
        alpha = strategy.alpha if strategy.name == "dWr" else None
    else:
        strategy, scale, alpha = None, 1.0, None
    return Query(args.model, strategy.name if strategy else None, float(scale),
                 alpha, args.batch or 1, args.resolution, args.precision)


def is_onnx_file(model: str) -> bool:
    return model.lower().endswith(".onnx") or Path(model).is_file()


def run(args) -> int:
    from scaleprof.errors import BadInput
    from scaleprof.predict import check_environment, describe, predict_query
    from scaleprof.predict.predictor_choice import KERNEL_MODEL, choose_predictor

    if is_onnx_file(args.model):
        return run_file(args)
    query = query_from(args)                                 # the flags' own errors first
    choice = choose_predictor(args.target, args.calibration)
    if choice.predictor == KERNEL_MODEL:
        return run_zoo_kernels(args, query, choice)
    if args.per_layer or args.strict or args.measure:
        raise BadInput(f"--per-layer, --measure and --strict need the kernel model: {choice.reason}")
    cal = choice.calibration
    if not args.any_environment:
        check_environment(cal)
    start = time.perf_counter()
    spec, features, prediction = predict_query(cal, query)
    seconds = time.perf_counter() - start
    resolution = query.resolution or spec.resolution
    if args.json:
        print(json.dumps({"target": cal.target, "env_key": cal.env_key, "device": cal.device_name,
                          **_query_fields(query), "batch": query.batch, "resolution": resolution, "precision": query.precision,
                          "flops": features.flops, "params": features.params, "acts": features.acts,
                          "predictor": choice.label, "predictor_reason": choice.reason,
                          **prediction.to_dict(), "seconds": seconds}, indent=1, sort_keys=True))
        return 0
    print(f"{query.label} @{resolution} b{query.batch} {query.precision} on {cal.target} ({cal.device_name}): "
          f"{describe(prediction)}")
    print(f"  {features.flops / 1e9:.3f} GMACs, {features.params / 1e6:.2f} M params, {features.acts / 1e6:.2f} M acts"
          f" per image; {features.layers} layers; predicted in {1e3 * seconds:.0f} ms from counts alone")
    print(f"  predictor: {choice.label}: {choice.reason}")
    return 0


def predict_file(args, cal=None) -> tuple:
    """(kernel calibration, KernelGraph, NetworkPrediction, seconds) of FILE.onnx on --target (with ``cal``,
    the kernel calibration already chosen)."""
    from scaleprof.errors import BadInput
    from scaleprof.predict import check_environment, file_kernels, find_kernels, ort_settings, predict_kernels
    from scaleprof.tools.args import check_shape_arguments

    check_shape_arguments(args, args.model)
    cal = cal or find_kernels(args.target, args.calibration)
    if not args.any_environment:
        check_environment(cal)
    threads, level = ort_settings(cal.target_config)
    start = time.perf_counter()
    graph = file_kernels(args.model, threads, level, args.batch, args.resolution)
    if args.precision != graph.precision:
        raise BadInput(f"{args.model} is an {graph.precision} model and ONNX Runtime runs a model in its own "
                       f"precision: pass --precision {graph.precision} (or export it at {args.precision})")
    prediction = predict_kernels(cal.model, graph.kernels, strict=args.strict, correction=cal.correction)
    return cal, graph, prediction, time.perf_counter() - start


def _share_lines(prediction) -> list[str]:
    total = prediction.latency_ms or 1.0
    groups = ", ".join(f"{g} {ms:.3g} ms ({100 * ms / total:.0f}%)"
                       for g, ms in sorted(prediction.groups.items(), key=lambda item: -item[1]))
    return [f"  per group: {groups}"] + [f"  warning: {note}" for note in prediction.warnings]


def _layer_lines(prediction, measured: dict | None = None) -> list[str]:
    lines = [f"  {'kernel':<48} {'op':<20} {'k':>2} {'s':>1} {'groups':>6} {'ch in':>6} {'ch out':>6} {'out px':>7} "
             f"{'MMACs':>8} {'KB moved':>9} {'fused':<12} {'ms':>8} {'share':>6}"
             + (f" {'measured':>8} {'error':>7}" if measured is not None else "")]
    for row in prediction.per_layer():
        flag = "" if row["covered"] and not row["far_from_calibration"] else "  (!)"
        if measured is not None:
            ms = measured.get(row["name"])
            flag = (f" {ms:>8.4f} {100 * (row['predicted_ms'] / ms - 1):>+6.0f}%" if ms else f" {'-':>8} {'-':>7}") + flag
        lines.append(f"  {row['name'][-48:]:<48} {row['op']:<20} {row['kernel']:>2} {row['stride']:>1} "
                     f"{row['groups']:>6} {row['channels_in']:>6} {row['channels_out']:>6} {row['size_out']:>7} "
                     f"{row['flops'] / 1e6:>8.2f} {(row['bytes_read'] + row['bytes_written']) / 1e3:>9.0f} "
                     f"{'+'.join(row['fused']) or '-':<12} {row['predicted_ms']:>8.4f} {100 * row['share']:>5.1f}%"
                     f"{flag}")
    return lines


def run_zoo_kernels(args, query, choice) -> int:
    """A zoo configuration through the kernel model: exported once (static shape, cached; int8 in the
    calibrated target's flavour), then predicted as that file."""
    from scaleprof.engines.int8_flavour import flavour_of
    from scaleprof.predict import spec_for
    from scaleprof.predict.sweep_kernels import exported_file

    cal = choice.calibration
    spec = spec_for(query.model, query.strategy, query.scale, query.alpha)
    resolution = query.resolution or spec.resolution
    target = cal.target_config                                # int8: the file its backend runs
    flavour = flavour_of(query.precision, str(target.get("backend")), str(target.get("device") or "cpu"))
    args.model = str(exported_file(spec, query.batch, resolution, query.precision, flavour or None))
    args.batch, args.resolution = query.batch, resolution
    return run_file(args, choice, query)


def measure_file(path, graph, cal) -> tuple[dict, float | None]:
    """({kernel name: measured ms}, fastest whole run ms) of the file run here under ORT's profiler."""
    import onnx

    from scaleprof.predict import ort_settings, time_graph

    model = onnx.load(str(path))
    initializers = {t.name for t in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in initializers)
    rows, run = time_graph(model, {name: tuple(graph.input_shape)}, *ort_settings(cal.target_config))
    return {k.name: ms for k, ms in rows if k.kind != "view"}, (run[1] if run else None)


def run_file(args, choice=None, query=None) -> int:
    """Predict FILE.onnx (or, with ``query``, the zoo configuration exported to it) with the kernel model."""
    from scaleprof.errors import BadInput
    from scaleprof.predict.predictor_choice import KERNEL_MODEL, Choice

    if args.measure and not args.per_layer:
        raise BadInput("--measure applies to --per-layer (each kernel's measured time beside its prediction)")
    cal, graph, prediction, seconds = predict_file(args, choice.calibration if choice else None)
    choice = choice or Choice(KERNEL_MODEL, "an ONNX file is predicted from its kernels", cal)
    measured, run_ms = measure_file(args.model, graph, cal) if args.measure else (None, None)
    batch, _, height, width = graph.input_shape
    asked = _query_fields(query) if query else {}
    if args.json:
        print(json.dumps({"target": cal.target, "env_key": cal.env_key, "device": cal.device_name, "file": args.model,
                          "batch": batch, "resolution": [height, width], "precision": graph.precision,
                          "macs": graph.flops, "seconds": seconds, "predictor": choice.label,
                          "predictor_reason": choice.reason, **asked, **prediction.to_dict(args.per_layer),
                          **(_measured_json(prediction, measured, run_ms) if measured is not None else {})},
                         indent=1, sort_keys=True))
        return 0
    kernels = sum(1 for e in prediction.estimates if e.kernel.kind != "view")
    print(f"{query.label if query else args.model} @{height}x{width} b{batch} {graph.precision} on {cal.target} "
          f"({cal.device_name}): {prediction.latency_ms:.4g} ms (interval {prediction.low_ms:.4g} - "
          f"{prediction.high_ms:.4g} ms)")
    print(f"  {kernels} kernels after ONNX Runtime's fusions, {graph.flops / 1e9:.3f} GMACs; predicted in "
          f"{1e3 * seconds:.0f} ms from the graph alone (kernel calibration: {cal.graphs} timed graphs)"
          + (f"; exported to {args.model}" if query else ""))
    print(f"  predictor: {choice.label}: {choice.reason}")
    if run_ms:
        print(f"  measured here: {run_ms:.4g} ms (fastest run, profiler off), {sum(measured.values()):.4g} ms in "
              f"the profiled kernels against {sum(e.ms for e in prediction.estimates):.4g} ms predicted")
    print("\n".join(_share_lines(prediction) + (_layer_lines(prediction, measured) if args.per_layer else [])))
    return 0


def _query_fields(query) -> dict:
    return {"model": query.model, "strategy": query.strategy, "alpha": query.alpha, "scale": query.scale}


def _measured_json(prediction, measured: dict, run_ms) -> dict:
    rows = [{**row, "measured_ms": measured.get(row["name"])} for row in prediction.per_layer()]
    return {"per_layer": rows, "measured_run_ms": run_ms}
