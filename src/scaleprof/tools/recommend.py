"""scaleprof recommend MODEL --target T --budget-ms X: the scalings (strategy, alpha, s) with the most flops
that the predictor puts within a latency budget; --verify builds and measures the top few here."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

NAME = "recommend"
HELP = "search strategy, alpha and s with the predictor for the most flops within a latency budget"
VERIFY_TIMING = {"min_time_s": 1.0, "target_ci": 0.01, "max_time_s": 5.0}


def add_arguments(parser) -> None:
    from scaleprof.tools.args import add_calibration_arguments, add_shape_arguments

    parser.add_argument("model", metavar="MODEL", help="base model, a timm name (see `scaleprof models`)")
    parser.add_argument("--budget-ms", type=float, required=True, metavar="MS", help="latency budget per batch")
    add_calibration_arguments(parser)
    add_shape_arguments(parser, batch="batch size (default 1)")
    parser.add_argument("--strategies", nargs="+", metavar="S", help="strategies to search (default: all named)")
    parser.add_argument("--alphas", nargs="+", type=float, metavar="A",
                        help="dWr alphas to search (default 0.1, 0.2, ..., 1.0)")
    parser.add_argument("--max-scale", type=float, default=16.0, help="largest flops factor s searched (default 16)")
    parser.add_argument("--top", type=int, default=10, help="configurations listed (default 10)")
    parser.add_argument("--optimistic", action="store_true",
                        help="a configuration fits when its predicted latency is within the budget "
                             "(default: when the upper end of its interval is)")
    parser.add_argument("--verify", nargs="?", type=int, const=3, default=0, metavar="N",
                        help="export, build and time the top N (default 3) here and print predicted against measured")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def measure(candidate, target_config: dict, work_dir) -> dict:
    """Export, build (engine cache in ``work_dir``) and time one candidate on the calibration's target,
    through the sweep's own stages: the same export file name, parity check and engine build."""
    from scaleprof.engines.int8_flavour import flavour_of
    from scaleprof.predict import spec_for
    from scaleprof.profile import TimingSettings
    from scaleprof.sweep.config import Target
    from scaleprof.sweep.stages import UpstreamStages

    q = candidate.query
    stages = UpstreamStages(roofline=False)
    spec = spec_for(q.model, q.strategy, q.scale, q.alpha)
    target = Target.from_dict(target_config)
    flavour = flavour_of(q.precision, target.backend, target.device)
    onnx_path = stages.export(spec, q.precision, flavour, Path(work_dir))
    engine, _, _ = stages.build(onnx_path, spec, target, q.precision,
                                [(q.batch, candidate.resolution)], Path(work_dir) / "engines")
    try:
        stats = stages.time(engine, q.batch, candidate.resolution, TimingSettings(**VERIFY_TIMING))
    finally:
        stages.release(engine)
    return {"measured_ms": stats.median, "ci95": list(stats.ci95), "cv": stats.cv}


def _verify(cal, candidates, count: int, budget: float) -> list[dict]:
    from scaleprof.errors import BadInput
    from scaleprof.predict import check_environment, current_environment_key

    if current_environment_key(cal) is None:
        raise BadInput(f"--verify measures here, and target {cal.target!r} "
                       f"({cal.target_config.get('backend')} on {cal.target_config.get('device')}) cannot run here")
    check_environment(cal)
    results = []
    with tempfile.TemporaryDirectory(prefix="scaleprof-verify-") as work:
        for cand in candidates[:count]:
            m = measure(cand, cal.target_config, work)
            predicted = cand.prediction.latency_ms
            results.append({**cand.to_dict(), **m, "error": predicted / m["measured_ms"] - 1.0,
                            "measured_within_budget": m["measured_ms"] <= budget,
                            "measured_in_interval": cand.prediction.low_ms <= m["measured_ms"] <= cand.prediction.high_ms})
    return results


def _label(c) -> str:
    q = c.query
    strategy = f"dWr({q.alpha:g})" if q.alpha is not None else q.strategy
    return f"{strategy} x{q.scale:g} @{c.resolution}"


def _print(cal, candidates, args, verified) -> None:
    within = "predicted" if args.optimistic else "whose whole interval is"
    print(f"{args.model} on {cal.target} ({cal.device_name}), batch {args.batch}, budget {args.budget_ms:g} ms: "
          f"per strategy, the configuration with the most flops {within} within it (flops as the capacity proxy "
          "of the scaling papers: at equal flops the strategies reach similar accuracy)")
    print(f"  {'configuration':<24} {'GMACs':>7} {'M params':>8} {'M acts':>7} {'predicted ms':>12}  interval")
    for c in candidates[:args.top]:
        p = c.prediction
        flag = "" if c.fits_surely else "  (interval reaches past the budget)"
        flag += f"  EXTRAPOLATION: {'; '.join(p.extrapolation)}" if p.extrapolation else ""
        print(f"  {_label(c):<24} {c.flops / 1e9:>7.3f} {c.params / 1e6:>8.2f} {c.acts / 1e6:>7.2f} "
              f"{p.latency_ms:>12.4g}  {p.low_ms:.4g} - {p.high_ms:.4g}{flag}")
    for v in verified:
        strategy = f"dWr({v['alpha']:g})" if v["alpha"] is not None else v["strategy"]
        print(f"  verified {strategy} x{v['scale']:g}: predicted {v['latency_ms']:.4g} ms, measured "
              f"{v['measured_ms']:.4g} ms (CV {100 * v['cv']:.1f}%), error {100 * v['error']:+.1f}%, "
              f"{'within' if v['measured_within_budget'] else 'OVER'} the budget, "
              f"{'inside' if v['measured_in_interval'] else 'outside'} the interval")


def run(args) -> int:
    from scaleprof.errors import BadInput
    from scaleprof.models.strategies import check_scale
    from scaleprof.predict import DEFAULT_ALPHAS, check_environment, find, recommend
    from scaleprof.tools.args import check_shape_arguments

    if args.batch < 1 or args.top < 1 or args.verify < 0 or not args.max_scale >= 1:
        raise BadInput("--batch, --top and --max-scale must be at least 1 (--verify N at least 0)")
    check_scale(args.max_scale, "--max-scale")
    check_shape_arguments(args, args.model)
    cal = find(args.target, args.calibration)
    if not args.any_environment:
        check_environment(cal)
    candidates = recommend(cal, args.model, args.budget_ms, args.batch, args.strategies,
                           tuple(args.alphas) if args.alphas else DEFAULT_ALPHAS, args.precision, args.max_scale,
                           surely=not args.optimistic)
    verified = _verify(cal, candidates, args.verify, args.budget_ms) if args.verify else []
    if args.json:
        print(json.dumps({"target": cal.target, "budget_ms": args.budget_ms, "batch": args.batch,
                          "capacity_proxy": "flops", "candidates": [c.to_dict() for c in candidates[:args.top]],
                          "verified": verified}, indent=1, sort_keys=True))
    else:
        _print(cal, candidates, args, verified)
    return 0
