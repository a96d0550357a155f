"""scaleprof demo [-o DIR]: the built-in sweep (EfficientNet-B0 under d, w, r, dwr, dWr at s = 1, 2, 4,
batch 1, ONNX Runtime on the CPU, per-layer profiles) and its report: `scaleprof sweep demo`, said
in one word."""

from __future__ import annotations

import time
from pathlib import Path

from scaleprof.tools.args import add_output_arguments, add_sweep_run_arguments, sweep_and_report

NAME = "demo"
HELP = "run the built-in sweep (EfficientNet-B0, 5 strategies x s in {1,2,4}, ORT on the CPU) and write its report"


def add_arguments(parser) -> None:
    add_output_arguments(parser, out="output directory", json=False)
    add_sweep_run_arguments(parser)


def run(args) -> int:
    from scaleprof.sweep.config_file import resolve_config

    start = time.perf_counter()
    config = resolve_config("demo")
    print(f"demo: {len(config.points())} points ({', '.join(config.strategies)} x s in "
          f"{{{', '.join(f'{s:g}' for s in config.scales)}}}) of {', '.join(config.models)} on "
          f"{', '.join(t.name for t in config.targets)}, into {Path(args.out)}")
    code = sweep_and_report(config, Path(args.out), args)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return code
