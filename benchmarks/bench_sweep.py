"""Sweep overhead: how much of a sweep's wall time is spent outside measurement, and how fast a
re-run is once everything is cached. Prints figures; asserts nothing.

    python benchmarks/bench_sweep.py [--config demo] [--out DIR]

Three runs of one config into one output directory:
1. cold: empty directory (scaling search, counting, ONNX export with parity checks, engine builds,
   timing, layer profiles, storing) plus writing the report;
2. warm --force: every point measured again, export and engine caches hot (the cost of a sweep
   whose models were already exported/built, e.g. after changing timing settings);
3. resumed: every point already in the store (what `scaleprof sweep` does when re-run), plus the report.
Share outside measurement = 1 - (end-to-end timing + layer profiling) / wall time (report included).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def run(config, out: Path, force: bool) -> tuple[float, float, object, float]:
    from scaleprof.report import write_report
    from scaleprof.sweep.runner import run_sweep

    start = time.perf_counter()
    result = run_sweep(config, out, force=force, progress=False, log=lambda m: None)
    t_report = time.perf_counter()
    write_report(out)
    end = time.perf_counter()
    return end - start, end - t_report, result, result.measurement_seconds


def outside(wall: float, measure_s: float) -> float:
    """Share of the wall time (report included) spent outside end-to-end timing and layer profiling."""
    return 1 - measure_s / wall if wall else 0.0


def describe(name: str, wall: float, report_s: float, result, measure_s: float) -> None:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(result.stage_seconds.items(), key=lambda kv: -kv[1]))
    print(f"{name:>10}: wall {wall:7.1f} s | measured {result.measured:3d} skipped {result.skipped:3d} | "
          f"measurement {measure_s:6.1f} s | outside measurement {100 * outside(wall, measure_s):5.1f}% "
          f"(report {report_s:.1f} s; {stages or 'no stages'})")


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from scaleprof.sweep.config import resolve_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo", help="a sweep YAML or a shipped config name (default demo)")
    parser.add_argument("--out", help="output directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    config = resolve_config(args.config)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    print(f"bench_sweep: {config.name}, {len(config.points())} points, into {out}")
    try:
        cold = run(config, out, force=False)
        describe("cold", *cold)
        warm = run(config, out, force=True)
        describe("warm", *warm)
        resumed = run(config, out, force=False)
        describe("resumed", *resumed)
        print(f"share of wall time outside measurement: cold {100 * outside(cold[0], cold[3]):.1f}%, "
              f"warm caches {100 * outside(warm[0], warm[3]):.1f}%")
        print(f"fully cached re-run: {resumed[0]:.1f} s vs cold {cold[0]:.1f} s = {cold[0] / resumed[0]:.0f}x faster "
              f"(warm --force re-run {warm[0]:.1f} s = {cold[0] / warm[0]:.1f}x)")
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
