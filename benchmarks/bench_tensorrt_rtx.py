"""TensorRT-RTX ahead-of-time builds of EfficientNet-B0 (printed, never asserted; no GPU needed):
per number of optimisation profiles (one static profile per resolution, batch 1), the build time,
the plan size, whether two builds give the same bytes, and the activation memory the builder
reported per profile against the predicted acts x batch x 4 bytes.

    .venv/bin/python -m benchmarks.bench_tensorrt_rtx [--out scaleprof-out/bench_tensorrt_rtx] [--profiles 1,3,6]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from pathlib import Path

RESOLUTION = 224
STEP = 32                  # profile k is batch 1 at RESOLUTION + k * STEP


def export_b0(out: Path) -> Path:
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    path = out / f"efficientnet_b0_{RESOLUTION}.onnx"
    if not path.is_file():
        spec = dataclasses.replace(base_spec("efficientnet_b0"), resolution=RESOLUTION)
        export_onnx(spec, path, ExportOptions(check_parity=False))
    return path


def build(path: Path, count: int, cache: Path):
    """One forced build with ``count`` profiles: (engine, wall seconds)."""
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine

    shapes = tuple(ShapePoint(1, RESOLUTION + k * STEP) for k in range(count))
    started = time.perf_counter()
    engine = build_engine(path, BuildSpec(backend="tensorrt-rtx", device="cuda", shapes=shapes), cache,
                          force=True).engine
    return engine, time.perf_counter() - started


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="scaleprof-out/bench_tensorrt_rtx")
    parser.add_argument("--profiles", default="1,3,6")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from scaleprof.complexity import count_onnx
    from scaleprof.engines.backends import get_backend

    backend = get_backend("tensorrt-rtx")
    path = export_b0(out)
    print(f"== efficientnet_b0, TensorRT-RTX {backend.version()} ahead-of-time build, GPU: "
          f"{backend.device_name('cuda')}; one static profile per resolution from {RESOLUTION} px, step {STEP}")
    print(f"{'profiles':>8} {'build s':>8} {'builder s':>9} {'plan MB':>8} {'same bytes':>10}")
    memory = {}
    for count in [int(c) for c in args.profiles.split(",")]:
        engine, seconds = build(path, count, out / "engines-a")
        again, _ = build(path, count, out / "engines-b")
        same = hashlib.sha256(engine.artifact_path.read_bytes()).digest() == \
            hashlib.sha256(again.artifact_path.read_bytes()).digest()
        extras = engine.manifest.extras
        print(f"{count:>8} {seconds:>8.2f} {extras['build_seconds_tensorrt']:>9.2f} "
              f"{engine.artifact_path.stat().st_size / 1e6:>8.1f} {str(same):>10}")
        memory.update({p["max"]["resolution"]: b for p, b in zip(extras["profiles"], extras["activation_bytes"])})
    print("== activation memory the builder reported vs predicted acts x batch x 4 B (batch 1)")
    print(f"{'resolution':>10} {'builder MiB':>11} {'predicted MiB':>13} {'ratio':>6}")
    for resolution, reported in sorted(memory.items()):
        predicted = count_onnx(path, 1, resolution).acts * 4
        print(f"{resolution:>10} {reported / 2**20:>11.1f} {predicted / 2**20:>13.1f} {reported / predicted:>6.2f}")


if __name__ == "__main__":
    main()
