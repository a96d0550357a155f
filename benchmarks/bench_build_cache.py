"""`scaleprof build --backend tensorrt-rtx` as a user runs it, one fresh process per call (printed, never
asserted; no GPU needed): the wall time of a fresh build (--force) against a cache hit of the same
command, and whether the hit imported torch or onnx. The machine's load average is printed beside
every figure: on a shared machine the numbers move with it. The processes keep their bytecode (in
OUT/pycache) as an installed scaleprof does, even where PYTHONDONTWRITEBYTECODE is set.

    .venv/bin/python -m benchmarks.bench_build_cache [--out scaleprof-out/bench_build_cache] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_tensorrt_rtx import RESOLUTION, export_b0

PROBE = ("import json, sys; from scaleprof import cli; code = cli.main(sys.argv[1:]); "
         "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, 'onnx': 'onnx' in sys.modules}))")


def timed(argv: list[str], env: dict) -> tuple[float, dict]:
    """Wall seconds of one fresh `python -c PROBE ARGV` process, and what it reported."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, env=env)
    seconds = time.perf_counter() - started
    return seconds, json.loads(done.stdout.strip().rsplit("\n", 1)[-1])


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="scaleprof-out/bench_build_cache")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = export_b0(out)
    argv = ["build", str(onnx_path), "--backend", "tensorrt-rtx", "--resolution", str(RESOLUTION),
            "-o", str(out), "--json"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(out.resolve() / "pycache")
    timed(argv, env)                                  # writes the bytecode and the cache entry
    print(f"== scaleprof build efficientnet_b0 {RESOLUTION} px --backend tensorrt-rtx, a fresh process per call")
    rows = {"fresh build": [], "cache hit": []}
    for _ in range(args.repeat):
        seconds, _ = timed(argv + ["--force"], env)
        rows["fresh build"].append((seconds, load(), ""))
        seconds, flags = timed(argv, env)
        imported = ", ".join(name for name in ("torch", "onnx") if flags[name]) or "neither torch nor onnx"
        rows["cache hit"].append((seconds, load(), f"imported {imported}"))
    for name, runs in rows.items():
        median = statistics.median(s for s, _, _ in runs)
        print(f"{name:>12}: median {median:.2f} s of {len(runs)} "
              f"({', '.join(f'{s:.2f} s [{where}]' for s, where, _ in runs)}) {runs[-1][2]}")


if __name__ == "__main__":
    main()
