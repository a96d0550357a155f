"""scaleprof calibrate DIR [--target T]: fit each target's latency model from a sweep's measurements,
save it in the calibration store, and print its held-out accuracy against the best single-metric fit.
scaleprof calibrate --kernels --target T [--budget MIN] [DIR]: time generated kernels on this machine for
`predict FILE.onnx` (and add a sweep's per-layer profiles of T to them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAME = "calibrate"
HELP = ("fit a per-target latency model from a sweep's points, or (--kernels) time single kernels here for "
        "predicting any ONNX file; prints accuracy and where it saved it")


def add_arguments(parser) -> None:
    parser.add_argument("dir", nargs="?",
                        help="a sweep's output directory (results.sqlite), or a results.json from `report`; with "
                             "--kernels, its per-layer profiles are added to the target's kernel calibration")
    parser.add_argument("--target", help="calibrate only this target (default: every target in the store)")
    parser.add_argument("--kernels", action="store_true",
                        help="time generated kernels and short fused chains on this machine for --target "
                             "(an ONNX Runtime CPU target: cpu-ort, cpu-ort-<N>t) instead of reading a sweep")
    parser.add_argument("--budget", type=float, metavar="MIN",
                        help="with --kernels: minutes spent timing kernels (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="with --kernels: the sampling seed (default 0)")
    parser.add_argument("-o", "--out", help="directory for the calibration files (default: the per-user store, "
                                            "$SCALEPROF_CACHE_DIR/calibrations or ~/.cache/scaleprof/calibrations)")
    parser.add_argument("--no-layers", action="store_true",
                        help="fit end-to-end latencies only, ignoring per-layer profiles")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _err(value) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def evaluation_lines(evaluation: dict) -> list[str]:
    """A readable table of one Evaluation.to_dict()."""
    lines = [f"  held-out accuracy, {evaluation['precision']} batch {evaluation['batch']} "
             f"({evaluation['networks']} distinct networks):",
             "    split                              n   model: <=10% <=20%  median   worst  in interval"
             " | best single-metric fit: <=10% <=20%  median   worst"]
    for kind, scores in evaluation["splits"].items():
        m, b = scores["model"], scores["baseline"]
        if not m["n"]:
            lines.append(f"    {kind:<32} {0:>3}   (nothing held out)")
            continue
        lines.append(f"    {kind:<32} {m['n']:>3}   {_pct(m['within_10']):>11} {_pct(m['within_20']):>5} "
                     f"{_pct(m['median_abs_error']):>7} {_err(m['worst_error']):>7} {_pct(m['interval_coverage']):>12}"
                     f" | {b['method']:<20} {_pct(b['within_10']):>5} {_pct(b['within_20']):>5} "
                     f"{_pct(b['median_abs_error']):>7} {_err(b['worst_error']):>7}")
    return lines


def run_kernels(args) -> int:
    from scaleprof.errors import BadInput
    from scaleprof.predict import DEFAULT_BUDGET_MIN, calibrate_kernels, find_kernels, save_kernels
    from scaleprof.predict.network_check import correction_summary, fit_correction, sweep_checks
    from scaleprof.predict.sweep_kernels import sweep_kernel_rows

    if not args.target:
        raise BadInput("--kernels needs --target T (an ONNX Runtime CPU target: cpu-ort, cpu-ort-<N>t)")

    def progress(graphs, elapsed, budget_s, label):
        if not args.json and graphs % 50 == 0:
            print(f"  {graphs} graphs timed, {elapsed / 60:.1f} of {budget_s / 60:.1f} min ({label})", file=sys.stderr)

    out = Path(args.out) if args.out else None
    if args.dir and args.budget is None:                 # a sweep's profiles, added to the stored calibration
        cal = find_kernels(args.target, out)
    else:
        budget = DEFAULT_BUDGET_MIN if args.budget is None else args.budget
        cal = calibrate_kernels(args.target, budget, args.seed, progress)
    if args.dir:
        say = None if args.json else (lambda line: print(line, file=sys.stderr))
        rows, added = sweep_kernel_rows(args.dir, cal, say)
        cal = cal.with_rows(rows, source=added["source"])
        if not args.json:
            print(f"added {added['kernels']} profiled kernels of {added['points']} sweep points from {added['source']} "
                  f"({added['layers_unmatched']} profiled layers matched no kernel)")
        cal = cal.with_correction(fit_correction(sweep_checks(args.dir, cal, say), source=added["source"]))
        if not args.json:
            print(correction_summary(cal.correction))
    path = save_kernels(cal, out)
    keys = {key: {"timed": len(m.points), "median_error": m.error} for key, m in sorted(cal.model.keys.items())}
    if args.json:
        print(json.dumps({"target": cal.target, "env_key": cal.env_key, "path": str(path), "graphs": cal.graphs,
                          "kernels": len(cal.rows), "seconds": cal.seconds, "keys": keys,
                          "correction": cal.correction.to_dict() if cal.correction else None}, indent=1, sort_keys=True))
        return 0
    print(f"{cal.target} (environment {cal.env_key}: {cal.device_name}): {cal.graphs} graphs, {len(cal.rows)} "
          f"kernels timed in {cal.seconds / 60:.1f} min; run cost {1e3 * cal.model.per_run_ms:.1f} us per run, "
          f"{1e3 * cal.model.per_kernel_ms:+.2f} us per kernel beside the profiled kernel times")
    for key, info in keys.items():
        print(f"  {key:<36} {info['timed']:>5} timed, leave-one-out median error {100 * info['median_error']:.0f}%")
    print(f"  saved: {path}")
    return 0


def run(args) -> int:
    from scaleprof.errors import BadInput
    from scaleprof.predict import calibrate_source, save

    if args.kernels:
        return run_kernels(args)
    if not args.dir:
        raise BadInput("calibrate needs a sweep directory (or a results.json), or --kernels --target T")
    if args.budget is not None:
        raise BadInput("--budget applies to --kernels")
    from scaleprof.predict import calibrations_dir

    cals = calibrate_source(args.dir, args.target, use_layers=not args.no_layers)
    out = Path(args.out) if args.out else None
    if out is None and calibrations_dir() is None:      # no usable HOME or cache variable: beside the sweep
        source = Path(args.dir)
        out = (source if source.is_dir() else source.parent) / "calibrations"
    saved = [(cal, save(cal, out)) for cal in cals]
    if args.json:
        print(json.dumps({"calibrations": [{"target": c.target, "env_key": c.env_key, "path": str(p),
                                            "fits": {k: v.to_dict() for k, v in c.fits.items()},
                                            "evaluation": list(c.evaluation)} for c, p in saved]},
                         indent=1, sort_keys=True))
        return 0
    for cal, path in saved:
        env = cal.environment
        print(f"{cal.target} (environment {cal.env_key}: {cal.device_name}, {env.get('backend', '?')} "
              f"{env.get('backend_version', '')}) from {cal.source}")
        for key, fitted in cal.fits.items():
            print(f"  fit {key}: {fitted.networks} distinct measured networks x batches, {fitted.model.method}, "
                  f"interval +-{100 * fitted.band:.1f}%")
        for evaluation in cal.evaluation:
            print("\n".join(evaluation_lines(evaluation)))
        print(f"  saved: {path}")
    return 0
