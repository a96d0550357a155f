"""Latency prediction: held-out accuracy on a CPU sweep and on the committed H100 results, the time to
predict a configuration against the time to export and measure it, and `recommend --verify` on this CPU.
Prints figures; asserts nothing.

    python -m benchmarks.bench_predict [--sweep DIR] [--target T] [--budget-ms MS] [--verify N]

Without --sweep it runs the shipped `demo` sweep into a temporary directory first (a few minutes). For
the issue's evaluation, pass a sweep of `paper_efficientnet_b0` with scales [1, 2, 4, 8] and layers on.
Timings on a shared machine are noisy: each measured point's CI and CV are in its store and printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
H100 = ROOT / "tests" / "fixtures" / "gpu" / "h100" / "gpu_validation_results.json"
PROBES = (("dWr", 3.0, 0.6), ("w", 2.5, None), ("dr", 1.5, None))


def evaluation(path, title: str) -> list:
    from scaleprof.predict import calibrate_source
    from scaleprof.tools.calibrate import evaluation_lines

    print(f"\n== held-out accuracy: {title} ({path})")
    cals = calibrate_source(path)
    for cal in cals:
        print(f"{cal.target} ({cal.device_name}):")
        for ev in cal.evaluation:
            print("\n".join(evaluation_lines(ev)))
            small = ev["splits"]["at most 8 calibration networks"]
            m, b = small["model"], small["baseline"]
            if m["n"]:
                print(f"    -> from at most 8 calibration networks: {100 * m['within_10']:.0f}% of {m['n']} held-out "
                      f"points within +-10% (goal 90%); best single-metric fit {100 * b['within_10']:.0f}% "
                      f"({b['method']})")
    return cals


def noise(path) -> None:
    from scaleprof.predict.samples import load_points

    points, _, _ = load_points(path)
    cvs = sorted(float(p.latency.cv or 0) for p in points)
    if cvs:
        print(f"timing noise of the measured points: median CV {100 * statistics.median(cvs):.1f}%, "
              f"worst {100 * cvs[-1]:.1f}% ({len(points)} points)")


def prediction_time(cal, model: str) -> None:
    print("\n== time per configuration: predict (counts only) against export + build + measure")
    saved = os.environ.get("SCALEPROF_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as work:
        os.environ["SCALEPROF_CACHE_DIR"] = str(Path(work) / "cache")      # cold caches
        try:
            _time_probes(cal, model, work)
        finally:
            os.environ.pop("SCALEPROF_CACHE_DIR")
            if saved is not None:
                os.environ["SCALEPROF_CACHE_DIR"] = saved


def _time_probes(cal, model: str, work: str) -> None:
    from scaleprof.predict import Query, predict_query
    from scaleprof.predict.recommendation import Candidate
    from scaleprof.tools.recommend import measure

    start = time.perf_counter()
    predict_query(cal, Query(model, None, 1.0))                 # imports torch and timm once
    print(f"  (first use in a process: {time.perf_counter() - start:.1f} s to import torch and timm, not counted below)")
    for strategy, scale, alpha in PROBES:
        query = Query(model, strategy, scale, alpha, 1)
        start = time.perf_counter()
        spec, features, p = predict_query(cal, query)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        predict_query(cal, query)
        warm = time.perf_counter() - start
        start = time.perf_counter()
        cand = Candidate(query, features.flops, features.params, features.acts, spec.resolution, p)
        measured = measure(cand, cal.target_config, work)
        built = time.perf_counter() - start
        print(f"  {query.label:<28} predict {1e3 * cold:7.0f} ms first (scaling search + counting), "
              f"{1e3 * warm:5.1f} ms cached | export+build+measure {built:6.1f} s "
              f"({built / cold:,.0f}x the first prediction) | predicted {p.latency_ms:.3g} ms, "
              f"measured {measured['measured_ms']:.3g} ms ({100 * (p.latency_ms / measured['measured_ms'] - 1):+.1f}%)")


def verify(cal, model: str, budget: float, count: int) -> None:
    from scaleprof.predict import check_environment, recommend
    from scaleprof.tools.recommend import measure

    print(f"\n== recommend --verify: {model} on {cal.target}, budget {budget:.3g} ms")
    check_environment(cal)
    start = time.perf_counter()
    candidates = recommend(cal, model, budget, 1)
    print(f"  search: {len(candidates)} strategy lines in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as work:
        for cand in candidates[:count]:
            m = measure(cand, cal.target_config, work)
            p = cand.prediction
            error = p.latency_ms / m["measured_ms"] - 1
            print(f"  {cand.query.label:<28} {cand.flops / 1e9:.3f} GMACs: predicted {p.latency_ms:.4g} ms "
                  f"[{p.low_ms:.4g}, {p.high_ms:.4g}], measured {m['measured_ms']:.4g} ms (CV {100 * m['cv']:.1f}%): "
                  f"error {100 * error:+.1f}% ({'within' if abs(error) <= 0.10 else 'outside'} +-10%), "
                  f"{'within' if m['measured_ms'] <= budget else 'OVER'} the budget"
                  + (f"; extrapolation: {'; '.join(p.extrapolation)}" if p.extrapolation else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", help="a CPU sweep directory (default: run the shipped demo sweep first)")
    parser.add_argument("--budget-ms", type=float, help="recommend's budget (default: the sweep's median latency)")
    parser.add_argument("--verify", type=int, default=1, help="recommended configurations to measure (default 1)")
    parser.add_argument("--target", help="the CPU target to time and verify (default: the sweep's first CPU target)")
    args = parser.parse_args(argv)
    made = None
    if args.sweep is None:
        from scaleprof.sweep.config_file import resolve_config
        from scaleprof.sweep.runner import run_sweep

        made = Path(tempfile.mkdtemp(prefix="bench-predict-sweep-"))
        print(f"running the demo sweep into {made} ...")
        run_sweep(resolve_config("demo"), made, progress=False, log=lambda m: None)
    sweep = Path(args.sweep) if args.sweep else made
    try:
        evaluation(H100, "committed H100 results")
        cals = [c for c in evaluation(sweep, "this CPU") if c.target_config.get("device", "cpu") == "cpu"
                and args.target in (None, c.target)]
        noise(sweep)
        if cals:
            cal = cals[0]
            model = cal.models[0]
            prediction_time(cal, model)
            budget = args.budget_ms or statistics.median(p["latency_ms"] for p in cal.points)
            verify(cal, model, budget, args.verify)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
