"""scaleprof demo [-o DIR]: the built-in sweep (EfficientNet-B0 under d, w, r, dwr, dWr at s = 1, 2, 4,
batch 1, ONNX Runtime on the CPU, per-layer profiles) and its report."""

from __future__ import annotations

import time
from pathlib import Path

NAME = "demo"
HELP = "run the built-in sweep (EfficientNet-B0, 5 strategies x s in {1,2,4}, ORT on the CPU) and write its report"


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--out", default="scaleprof-out", help="output directory (default scaleprof-out)")
    parser.add_argument("--force", action="store_true", help="re-measure points already in the store")
    parser.add_argument("--no-progress", action="store_true", help="one line per point instead of a progress bar")


def run(args) -> int:
    from scaleprof.tools.sweep import resolve_config, sweep_and_report

    start = time.perf_counter()
    config = resolve_config("demo")
    print(f"demo: {len(config.points())} points ({', '.join(config.strategies)} x s in "
          f"{{{', '.join(f'{s:g}' for s in config.scales)}}}) of {', '.join(config.models)} on "
          f"{', '.join(t.name for t in config.targets)}, into {Path(args.out)}")
    code = sweep_and_report(config, Path(args.out), force=args.force,
                            progress=False if args.no_progress else None)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return code
