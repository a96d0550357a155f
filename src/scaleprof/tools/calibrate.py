"""scaleprof calibrate DIR [--target T]: fit each target's latency model from a sweep's measurements,
save it in the calibration store, and print its held-out accuracy against the best single-metric fit."""

from __future__ import annotations

NAME = "calibrate"
HELP = "fit a per-target latency model from a sweep's points; prints held-out accuracy and where it saved it"


def add_arguments(parser) -> None:
    parser.add_argument("dir", help="a sweep's output directory (results.sqlite), or a results.json from `report`")
    parser.add_argument("--target", help="calibrate only this target (default: every target in the store)")
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


def run(args) -> int:
    import json
    from pathlib import Path

    from scaleprof.predict import calibrate_source, save

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
