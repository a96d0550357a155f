"""Sweep overhead: how much of a sweep's wall time is spent outside measurement, and how fast a
re-run is once everything is cached. Prints figures; asserts nothing.

    python -m benchmarks.bench_sweep [--config demo] [--jobs 1 2] [--out DIR]

Runs of one config:
1. cold, once per --jobs value, each into an empty directory of its own (scaling search, counting,
   ONNX export with parity checks, engine builds, timing, layer profiles, storing) plus writing the
   report; with N > 1 jobs the preparation runs in N worker processes (on a CPU target all of it
   before any timing);
2. warm --force, into the last cold run's directory: every point measured again, export and engine
   caches hot (the cost of a sweep whose models were already exported/built);
3. resumed: every point already in the store (what `scaleprof sweep` does when re-run), plus the report.
Share outside measurement = 1 - (end-to-end timing + layer profiling) / wall time (report included).
Timing noise = the report's figure: the median (and largest) coefficient of variation of the points'
latencies; "vs jobs 1" compares each point's median latency with the first cold run's.
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


def run(config, out: Path, force: bool, jobs: int = 1) -> tuple[float, float, object, float]:
    from scaleprof.report import write_report
    from scaleprof.sweep.executors import make_executor
    from scaleprof.sweep.runner import run_sweep

    start = time.perf_counter()
    result = run_sweep(config, out, force=force, progress=False, log=lambda m: None, executor=make_executor(jobs))
    t_report = time.perf_counter()
    write_report(out)
    end = time.perf_counter()
    return end - start, end - t_report, result, result.measurement_seconds


def outside(wall: float, measure_s: float) -> float:
    """Share of the wall time (report included) spent outside end-to-end timing and layer profiling."""
    return 1 - measure_s / wall if wall else 0.0


def describe(name: str, wall: float, report_s: float, result, measure_s: float) -> None:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(result.stage_seconds.items(), key=lambda kv: -kv[1]))
    load = f"; load average {os.getloadavg()[1]:.1f} (5 min)" if hasattr(os, "getloadavg") else ""
    print(f"{name:>10}: wall {wall:7.1f} s | measured {result.measured:3d} skipped {result.skipped:3d} | "
          f"measurement {measure_s:6.1f} s | outside measurement {100 * outside(wall, measure_s):5.1f}% "
          f"(report {report_s:.1f} s; {stages or 'no stages'}{load})")


def latencies(out: Path) -> dict:
    from scaleprof.sweep.store import Store

    with Store(out, create=False) as store:
        return {(p.point_key, p.target): p.latency for p in store.points()}


def noise(out: Path, reference: dict | None, reference_name: str) -> str:
    measured = latencies(out)
    cvs = [float(lat.cv or 0.0) for lat in measured.values()]
    text = f"timing noise: median CV {100 * statistics.median(cvs):.1f}%, largest {100 * max(cvs):.1f}%"
    shared = [k for k in measured if reference and k in reference]
    if shared:
        ratios = [measured[k].median / reference[k].median for k in shared]
        text += (f"; median latency vs {reference_name}: x{statistics.median(ratios):.3f} "
                 f"(range x{min(ratios):.3f} .. x{max(ratios):.3f})")
    return text


def main(argv=None) -> int:
    from scaleprof.sweep.config_file import resolve_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo", help="a sweep YAML or a shipped config name (default demo)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="one cold run per value, in this order (default: 1 2)")
    parser.add_argument("--out", help="output directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    config = resolve_config(args.config)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    print(f"bench_sweep: {config.name}, {len(config.points())} points, into {out}")
    try:
        colds, reference = {}, None
        for jobs in args.jobs:
            colds[jobs] = run(config, out / f"jobs{jobs}", force=False, jobs=jobs)
            describe(f"cold -j{jobs}", *colds[jobs])
            print(f"{'':>10}  {noise(out / f'jobs{jobs}', reference, f'--jobs {args.jobs[0]}')}")
            reference = reference or latencies(out / f"jobs{jobs}")
        last = out / f"jobs{args.jobs[-1]}"
        warm = run(config, last, force=True)
        describe("warm", *warm)
        resumed = run(config, last, force=False)
        describe("resumed", *resumed)
        cold = colds[args.jobs[-1]]
        shares = ", ".join(f"--jobs {j} {100 * outside(c[0], c[3]):.1f}%" for j, c in colds.items())
        print(f"share of wall time outside measurement: cold {shares}; "
              f"warm caches {100 * outside(warm[0], warm[3]):.1f}%")
        print(f"fully cached re-run: {resumed[0]:.1f} s vs cold {cold[0]:.1f} s = {cold[0] / resumed[0]:.0f}x faster "
              f"(warm --force re-run {warm[0]:.1f} s = {cold[0] / warm[0]:.1f}x)")
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
