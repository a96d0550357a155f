"""Measurements that hold on a shared machine: the demo timed in interleaved rounds, quiet, next to an
intermittent neighbour and next to a constant one. Prints figures; asserts nothing.

    python -m benchmarks.bench_rounds [--config demo] [--out DIR] [--period 10] [--busy 3]

Runs of one config, into one directory (the first builds everything; the others re-time with --force,
caches hot), each with the load average it ran under:
1. quiet, twice: medians within 3% for how many points, and the same metric ranking per (target, batch)?
2. one point after the other (the timing before rounds), for the cost (wall time of the rounds run
   against it, and as a share of the cold demo's wall time) and for a bias of switching networks
   every slice (the medians of both);
3. intermittent neighbour: a busy loop on every core for --busy seconds out of every --period, from a
   script this benchmark starts (re-parented: scaleprof counts its own children as its own time):
   medians within 5% of the quiet run's, the same ranking, held-out prediction within +-10%;
4. constant neighbour: a busy loop on every core throughout: the one line, and no verdict.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEIGHBOUR = """
import multiprocessing, os, sys, time
def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
period, busy, owner = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
while alive(owner):                     # gone with the benchmark, however it ends
    if busy > 0:
        procs = [multiprocessing.Process(target=spin, args=(busy,)) for _ in range(multiprocessing.cpu_count())]
        [p.start() for p in procs]
        [p.join() for p in procs]
    time.sleep(max(0.0, period - busy))
"""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def serial_stages():
    """The pipeline with its points timed one after the other (the timing before rounds)."""
    from scaleprof.sweep.stages import UpstreamStages

    class SerialStages(UpstreamStages):
        interleaves = False

    return SerialStages()


def sweep(config, out: Path, force: bool, stages=None) -> tuple[float, dict, str]:
    from scaleprof.sweep.runner import run_sweep
    from scaleprof.sweep.store import Store

    before = load()
    start = time.perf_counter()
    run_sweep(config, out, force=force, progress=False, log=lambda m: None, stages=stages)
    wall = time.perf_counter() - start
    with Store(out, create=False) as store:
        points = {(p.target, p.point_key): p for p in store.points()}
    return wall, points, f"{before} -> {load()}"


def neighbour(period: float, busy: float) -> int:
    """The neighbour script, re-parented (a shell starts it and exits); its process group id."""
    script = Path(tempfile.mkdtemp(prefix="neighbour-")) / "neighbour.py"
    script.write_text(NEIGHBOUR)
    command = f"setsid {sys.executable} {script} {period} {busy} {os.getpid()} >/dev/null 2>&1 & echo $!"
    out = subprocess.run(["sh", "-c", command],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def ranking(points: dict) -> dict:
    from scaleprof.report.analysis import analyze

    result = analyze(list(points.values()))
    return {key: [m.metric for m in ranked] for key, ranked in result.ranking.items()}


def agreement(a: dict, b: dict, within: float) -> tuple[int, int, list[str]]:
    shared = [k for k in a if k in b]
    off = [f"{k[1]} {a[k].latency_ms:.2f}/{b[k].latency_ms:.2f}" for k in shared
           if abs(b[k].latency_ms / a[k].latency_ms - 1) > within]
    return len(shared) - len(off), len(shared), off


def held_out(points: dict) -> str:
    from scaleprof.predict import sample_from_point
    from scaleprof.predict.network_fit import fit_batch
    from scaleprof.predict.evaluate import SMALL_CALIBRATION, select_calibration
    from scaleprof.predict.samples import distinct

    samples = [sample_from_point(p) for p in points.values() if not p.contended and p.spec]
    pool = distinct(samples)
    if len(pool) < 5:
        return f"too few faithful networks ({len(pool)}) to hold any out"
    train = select_calibration(pool, min(SMALL_CALIBRATION, max(4, len(pool) // 2)))
    fitted = fit_batch(train)
    chosen = {s.network for s in train}
    errors = [fitted.predict(s.features, s.batch, s.precision)[0] / s.latency_ms - 1 for s in pool
              if s.network not in chosen]
    ok = sum(abs(e) <= 0.10 for e in errors)
    return f"{ok} of {len(errors)} held-out points within +-10% ({100 * ok / max(1, len(errors)):.0f}%)"


def compare(name: str, quiet: dict, other: dict, within: float) -> None:
    from scaleprof.report.analysis import analyze

    ok, n, off = agreement(quiet, other, within)
    a, b = ranking(quiet), ranking(other)
    same = (a == b) if a and b else "no ranking (no faithful points in one of the runs)"
    contended = sum(p.contended for p in other.values())
    print(f"  {name}: medians within {100 * within:.0f}% for {ok} of {n} points ({100 * ok / max(1, n):.0f}%); "
          f"same metric ranking: {same}; contended: {contended}")
    if off:
        print("    off: " + "; ".join(off[:8]))
    print(f"    held-out prediction: {held_out(other)}")
    for verdict in analyze(list(other.values())).verdicts().values():
        print(f"    {verdict}")
    line = analyze(list(other.values())).unfaithful()
    if line:
        print(f"    {line}")


def main(argv=None) -> int:
    from scaleprof.sweep.config_file import resolve_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo")
    parser.add_argument("--out", help="output directory (default: a temporary one)")
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--busy", type=float, default=3.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["serial", "intermittent", "constant"])
    args = parser.parse_args(argv)
    config = resolve_config(args.config)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-rounds-"))
    print(f"bench_rounds: {config.name}, {len(config.points())} points, into {out}; {load()}")
    wall, first, how = sweep(config, out, force=False)
    print(f"  cold (rounds): {wall:.1f} s; {how}")
    wall_q, quiet, how = sweep(config, out, force=True)
    print(f"  quiet again (rounds, warm): {wall_q:.1f} s; {how}")
    compare("quiet twice", first, quiet, 0.03)
    if "serial" not in args.skip:
        wall_s, serial, how = sweep(config, out, force=True, stages=serial_stages())
        print(f"  one point after the other (warm): {wall_s:.1f} s; {how}")
        # switching networks every slice must not bias the figures (caches, a runtime's spinning threads)
        ok, n, off = agreement(serial, quiet, 0.03)
        print(f"  rounds vs one point after the other: medians within 3% for {ok} of {n} points"
              + (f"; off: {'; '.join(off[:6])}" if off else ""))
        print(f"  cost of rounds: {wall_q - wall_s:+.1f} s warm ({100 * (wall_q / wall_s - 1):+.0f}%), "
              f"{100 * (wall_q - wall_s) / wall:+.0f}% of the cold demo's {wall:.0f} s")
    for name, busy in (("intermittent", args.busy), ("constant", args.period)):
        if name in args.skip:
            continue
        pid = neighbour(args.period, busy)
        try:
            wall_n, noisy, how = sweep(config, out, force=True)
        finally:
            stop(pid)
        print(f"  {name} neighbour ({busy:g} s busy of every {args.period:g}): {wall_n:.1f} s; {how}")
        compare(f"{name} vs quiet", quiet, noisy, 0.05)
        time.sleep(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
