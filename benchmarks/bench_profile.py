"""Profile-stage figures (printed, never asserted):

1. Two end-to-end profile runs of the same ORT engine (EfficientNet-B0, batch 1, CPU) in one
   command: both medians, their 95% CIs and how far apart they are.
2. Per family, ORT on the CPU: layer-time coverage by mapped ONNX nodes, the share of backend
   helper layers (NCHWc reorders), the overhead ratio (median profiled iteration / end-to-end median), and whether the
   per-layer counts sum to the model totals.

    .venv/bin/python -m benchmarks.bench_profile [--out scaleprof-out/bench_profile] [--families a,b]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

FAMILIES = (("efficientnet_b0", 224), ("efficientnetv2_s", 128), ("regnetx_002", 224), ("regnety_002", 224),
            ("tresnet_m", 128), ("resnet50", 128))


def export(name: str, resolution: int, out: Path) -> Path:
    """The base model ``name`` exported by scaleprof at ``resolution`` (reused when already there)."""
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    path = out / f"{name}_{resolution}.onnx"
    if not path.is_file():
        spec = dataclasses.replace(base_spec(name), resolution=resolution)
        export_onnx(spec, path, ExportOptions(check_parity=False))
    return path


def engine_for(path: Path, resolution: int, out: Path):
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine

    return build_engine(path, BuildSpec(backend="ort", device="cpu", shapes=(ShapePoint(1, resolution),)),
                        out / "engines").engine


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="scaleprof-out/bench_profile")
    parser.add_argument("--families", default=",".join(n for n, _ in FAMILIES))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from scaleprof.complexity import count_onnx
    from scaleprof.engines.base import ShapePoint
    from scaleprof.profile import TimingSettings, profile_layers, time_engine

    settings = TimingSettings(min_time_s=2.0, max_time_s=20.0, target_ci=0.01)
    print("== two end-to-end runs, efficientnet_b0, batch 1, ORT CPU (target CI 1%, cap 20 s)")
    engine = engine_for(export("efficientnet_b0", 224, out), 224, out)
    shape = ShapePoint(1, 224)
    with engine:
        runs = [time_engine(engine, shape, settings) for _ in range(2)]
    for i, s in enumerate(runs, 1):
        half = max(s.median - s.ci95[0], s.ci95[1] - s.median) / s.median
        print(f"run {i}: median {s.median:.3f} ms  95% CI [{s.ci95[0]:.3f}, {s.ci95[1]:.3f}] (+-{half:.2%})  "
              f"cv {s.cv:.1%}  {s.iterations} it in {s.total_s:.1f} s  stop: {s.stop_reason}")
    a, b = runs[0].median, runs[1].median
    print(f"medians differ by {abs(a - b) / min(a, b):.2%} (goal: within 3%)")

    print("\n== coverage per family, ORT CPU batch 1 (separate layer run, 10 iterations)")
    print(f"{'model':<18} {'res':>4} {'layers':>6} {'coverage':>9} {'helpers':>8} {'e2e ms':>8} "
          f"{'layer sum':>9} {'iteration':>9} {'ratio':>6} {'sums':>5} {'secs':>5}")
    for name, resolution in FAMILIES:
        if name not in args.families.split(","):
            continue
        start = time.perf_counter()
        path = export(name, resolution, out)
        engine = engine_for(path, resolution, out)
        shape = ShapePoint(1, resolution)
        counts = count_onnx(path, 1, resolution)
        with engine:
            e2e = time_engine(engine, shape, TimingSettings(min_time_s=1.0, max_time_s=5.0))
            rep = profile_layers(engine, shape, counts, e2e.median, iterations=10)
        helpers = sum(r.time_ms for r in rep.layers if r.status == "helper") / rep.layer_sum_ms
        sums = all(sum(getattr(r, k) for r in rep.layers) == counts.totals()[k] for k in ("flops", "params", "acts"))
        print(f"{name:<18} {resolution:>4} {len(rep.layers):>6} {rep.coverage:>9.1%} {helpers:>8.1%} "
              f"{e2e.median:>8.2f} {rep.layer_sum_ms:>9.2f} {rep.iteration_ms:>9.2f} {rep.overhead_ratio:>6.2f} {'ok' if sums else 'NO':>5} "
              f"{time.perf_counter() - start:>5.0f}")


if __name__ == "__main__":
    main()
