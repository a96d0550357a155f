"""scaleprof predict MODEL --strategy S --scale s --target T: a configuration's latency on a calibrated
target, from its counts alone (nothing is exported or run), with an interval and extrapolation warnings."""

from __future__ import annotations

NAME = "predict"
HELP = "predict a configuration's latency on a calibrated target from its counts alone, with an interval"


def add_arguments(parser) -> None:
    from scaleprof.tools.args import (add_calibration_arguments, add_model_arguments, add_output_arguments,
                                      add_shape_arguments)

    add_model_arguments(parser)
    add_calibration_arguments(parser)
    add_shape_arguments(parser, batch="batch size (default 1)",
                        resolution="input size (default: what the strategy chose)")
    add_output_arguments(parser)


def query_from(args):
    """The Query that MODEL/--strategy/--alpha/--scale/--phi/--batch/--resolution describe."""
    import math

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
                 alpha, args.batch, args.resolution, args.precision)


def run(args) -> int:
    import json
    import time

    from scaleprof.predict import check_environment, describe, find, predict_query

    query = query_from(args)                                 # the flags' own errors first
    cal = find(args.target, args.calibration)
    if not args.any_environment:
        check_environment(cal)
    start = time.perf_counter()
    spec, features, prediction = predict_query(cal, query)
    seconds = time.perf_counter() - start
    resolution = query.resolution or spec.resolution
    if args.json:
        print(json.dumps({"target": cal.target, "env_key": cal.env_key, "device": cal.device_name,
                          "model": query.model, "strategy": query.strategy, "alpha": query.alpha, "scale": query.scale,
                          "batch": query.batch, "resolution": resolution, "precision": query.precision,
                          "flops": features.flops, "params": features.params, "acts": features.acts,
                          **prediction.to_dict(), "seconds": seconds}, indent=1, sort_keys=True))
        return 0
    print(f"{query.label} @{resolution} b{query.batch} {query.precision} on {cal.target} ({cal.device_name}): "
          f"{describe(prediction)}")
    print(f"  {features.flops / 1e9:.3f} GMACs, {features.params / 1e6:.2f} M params, {features.acts / 1e6:.2f} M acts"
          f" per image; {features.layers} layers; predicted in {1e3 * seconds:.0f} ms from counts alone")
    return 0
