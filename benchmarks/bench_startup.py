"""Start-up cost of the commands that only read files, each in a fresh interpreter.

`scaleprof report`, `scaleprof inspect`, `scaleprof build` (an engine already in the cache) and
reading ONNX metadata import no torch; `import torch` alone is timed beside them for scale. Sets up
a synthetic results store and one small export in a temporary directory, then prints the median
(and min..max) wall time of REPEAT runs of each. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEAT = 5
ROOT = Path(__file__).resolve().parent.parent


def wall(argv) -> list[float]:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    from tests.report.synthetic import fill_store, synthetic_rows

    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sweep = tmp / "sweep"
        sweep.mkdir()
        fill_store(sweep, synthetic_rows(strategies=("d", "w", "r", "dwr", "dWr")))
        onnx_file = tmp / "efficientnet_b0.onnx"
        export_onnx(dataclasses.replace(base_spec("efficientnet_b0"), resolution=96), onnx_file,
                    ExportOptions(check_parity=False))
        cli = [sys.executable, "-c", "import sys; from scaleprof.cli import main; sys.exit(main())"]
        build = cli + ["build", str(onnx_file), "--backend", "ort", "--cache-dir", str(tmp / "engines")]
        subprocess.run(build, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)   # cache it
        cases = [
            ("python -c 'import torch' (for scale)", [sys.executable, "-c", "import torch"]),
            ("import every stage", [sys.executable, "-c", "import scaleprof.models, scaleprof.complexity, "
                                    "scaleprof.export, scaleprof.engines, scaleprof.profile, scaleprof.sweep, "
                                    "scaleprof.report"]),
            ("read_metadata(FILE.onnx)", [sys.executable, "-c", "from scaleprof.export import read_metadata; "
                                          f"read_metadata({str(onnx_file)!r})"]),
            ("scaleprof report DIR", cli + ["report", str(sweep)]),
            ("scaleprof report DIR --no-plots", cli + ["report", str(sweep), "--no-plots"]),
            ("scaleprof inspect FILE.onnx", cli + ["inspect", str(onnx_file)]),
            ("scaleprof build FILE.onnx (cached)", build),
        ]
        print(f"wall time of a fresh interpreter, median of {REPEAT} (min..max):")
        for name, argv in cases:
            times = wall(argv)
            print(f"  {name:38s} {statistics.median(times):6.2f} s  ({min(times):.2f}..{max(times):.2f})")


if __name__ == "__main__":
    main()
