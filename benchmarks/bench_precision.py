"""Precision benchmark: int8 against fp32 on ONNX Runtime's CPU EP. Prints figures; asserts nothing.

    python -m benchmarks.bench_precision [--out DIR] [--skip-sweep] [--skip-agreement] [--skip-plans]
                                         [--skip-activations]

1. the demo's strategies (d, w, r, dwr, dWr(0.8)) at s in {1, 2, 4}, batch 1, fp32 and int8 on
   ``cpu-ort`` (the demo's timing settings, no layer profiles; int8 in the flavour the sweep picks
   for ONNX Runtime's CPU EP, uint8 activations): latency per point, the int8/fp32
   speedup, and per precision the metric ranking (Pearson r of latency with flops, params, acts,
   layers) with the report's verdict, "does runtime still follow activations in int8 here?";
2. EfficientNet-B0 at 224 px exported as fp32 and int8 (random weights, 8 random calibration
   images): the int8 file's top-1 agreement with the fp32 PyTorch network on 64 seeded N(0, 1)
   images, the relative error of its logits, and both file sizes;
3. that B0 on ONNX Runtime's CPU EP as fp32, int8 with symmetric int8 activations (the default,
   what TensorRT takes) and int8 with asymmetric uint8 activations (``--int8-activations uint8``),
   the three engines alternated: median latency and what their convolutions run in;
4. TensorRT-RTX plans of that B0 (fp32, int8, and an fp8 export) at batch 1, built without a GPU:
   build seconds, plan size, what the convolutions run in, and the activation memory the builder
   planned against acts x bytes per element.

With random weights the agreement is no accuracy figure: it says how often int8 rounding leaves
the largest of 1000 near-equal random logits where it was, a check that the quantized graph
computes the same function, not how a trained int8 network classifies.

Each figure is printed beside the load average (``os.getloadavg``): timings on a busy machine are
not the machine's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

STRATEGIES = ["d", "w", "r", "dwr", "dWr"]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def sweep(out: Path) -> None:
    from scaleprof.report.analysis import analyze
    from scaleprof.report.precisions import mean_speedups, precision_pairs, verdicts
    from scaleprof.sweep.config_file import from_dict, resolve_config
    from scaleprof.sweep.runner import run_sweep
    from scaleprof.sweep.store import Store

    demo = resolve_config("demo")
    timing = {k: getattr(demo.timing, k) for k in ("warmup_iters", "warmup_s", "min_iters", "min_time_s",
                                                     "target_ci", "max_time_s")}
    config = from_dict({"name": "precision-bench", "models": ["efficientnet_b0"], "strategies": STRATEGIES,
                        "alpha": 0.8, "scales": [1, 2, 4], "precisions": ["fp32", "int8"], "targets": ["cpu-ort"],
                        "timing": {**timing, "layers": False}})
    flavours = sorted({p.flavour for p in config.points() if p.flavour})
    print(f"sweep: {len(config.points())} points into {out}, int8 with {'/'.join(flavours)} activations "
          f"(the target's flavour, scaleprof.engines.int8_flavour) ({load()})", flush=True)
    start = time.perf_counter()
    run_sweep(config, out, progress=False, log=lambda m: None)
    print(f"sweep took {time.perf_counter() - start:.0f} s ({load()})")
    summarize(out)


def summarize(out: Path) -> None:
    """The sweep's pairs, speedups and rankings. Contended points are left out of the report's
    analysis; when they are all this benchmark has, it says so and ranks them anyway (indicative)."""
    from scaleprof.report.analysis import analyze, metric_fits, rank_metrics
    from scaleprof.report.precisions import mean_speedups, precision_pairs, verdicts
    from scaleprof.sweep.store import Store

    with Store(out, create=False) as store:
        rows = store.points("ok")
    analysis = analyze(rows)
    measured = analysis.measured
    if len(analysis.rows) < len(measured):
        print(f"{len(measured) - len(analysis.rows)} of {len(measured)} points contended: the report leaves them "
              "out; the figures below include them (indicative only)")
    pairs = precision_pairs(measured)
    print(f"\n{'network':34} {'fp32 ms':>9} {'int8 ms':>9} {'speedup':>8} {'fp32 cv':>8} {'int8 cv':>8} int8 flavour")
    for pair in pairs:
        b, q = pair.base, pair.other
        label = f"{b.model} {b.strategy}{'(0.8)' if b.alpha else ''} x{b.scale:g} @{b.resolution}"
        print(f"{label:34} {b.latency_ms:9.2f} {q.latency_ms:9.2f} {pair.speedup:8.2f} "
              f"{b.latency.cv or 0:8.3f} {q.latency.cv or 0:8.3f} {q.precision_label}")
    for (target, precision, batch), (mean, low, high, n) in mean_speedups(pairs).items():
        print(f"\n{target} batch {batch}: {precision}/fp32 speedup geometric mean {mean:.2f}x "
              f"({low:.2f}x..{high:.2f}x, {n} networks)")
    for (group, batch), ranked in rank_metrics(metric_fits(measured)).items():
        print(f"ranking {group} batch {batch}: " + ", ".join(f"{m.metric} r={m.r:.3f}" for m in ranked
                                                             if m.r is not None))
    for text in verdicts(analysis):
        print(text)
    print(f"({load()})")


def agreement(directory: Path, images: int = 64) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec, build_model

    spec = base_spec("efficientnet_b0")
    sizes = {}
    for precision in ("fp32", "int8"):
        path = directory / f"b0-{precision}.onnx"
        start = time.perf_counter()
        export_onnx(spec, path, ExportOptions(precision=precision, check_parity=False))
        sizes[precision] = path.stat().st_size
        print(f"export {precision}: {sizes[precision] / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s ({load()})")
    print(f"int8 file {sizes['int8'] / sizes['fp32']:.2f} x the fp32 file")
    model = build_model(spec, "cpu", seed=0).eval()
    x = torch.randn(images, 3, spec.resolution, spec.resolution, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = torch.cat([model(chunk) for chunk in x.split(16)]).numpy()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(str(directory / "b0-int8.onnx"), so, providers=["CPUExecutionProvider"])
    out = np.concatenate([session.run(None, {"input": chunk.numpy()})[0] for chunk in x.split(16)])
    top1 = float(np.mean(out.argmax(1) == ref.argmax(1)))
    rel = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
    cos = float(np.sum(out * ref) / np.linalg.norm(out) / np.linalg.norm(ref))
    print(f"B0 int8 vs fp32 PyTorch on {images} random images at {spec.resolution} px: top-1 agreement "
          f"{top1:.1%}, max |error| / max |logit| {rel:.3f}, cosine {cos:.4f} ({load()})")
    print("  (random weights: agreement means the quantized graph computes the same function; "
          "it is no accuracy figure)")


def activations(directory: Path, rounds: int = 25) -> None:
    import statistics

    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    spec = base_spec("efficientnet_b0")
    shape = ShapePoint(1, spec.resolution)
    variants = {"fp32": ExportOptions(check_parity=False),
                "int8 (int8 activations)": ExportOptions(precision="int8", check_parity=False),
                "int8 (uint8 activations)": ExportOptions(precision="int8", int8_activations="uint8",
                                                          check_parity=False)}
    runners, convs = {}, {}
    for i, (name, options) in enumerate(variants.items()):
        path = directory / f"b0-variant{i}.onnx"
        export_onnx(spec, path, options)
        engine = build_engine(path, BuildSpec(precision=options.precision, shapes=(shape,)),
                              directory / "engines").engine
        engine.load()
        runners[name], convs[name] = engine.runner(shape), engine.manifest.extras.get("conv_precisions")
    times = {name: [] for name in runners}
    for runner in runners.values():
        for _ in range(3):
            runner()
    for _ in range(rounds):
        for name, runner in runners.items():
            times[name].append(runner())
    print(f"B0 at {spec.resolution} px, batch 1, ONNX Runtime CPU EP, {rounds} alternated rounds ({load()}):")
    base = statistics.median(times["fp32"])
    for name, t in times.items():
        median = statistics.median(t)
        print(f"  {name:26} median {median:7.1f} ms  min {min(t):7.1f} ms  speedup {base / median:5.2f}x  "
              f"convolutions {convs[name]}")


def plans(directory: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorrt_rtx") is None:
        print("plans: tensorrt_rtx is not installed here; skipped")
        return
    from scaleprof.core.onnx_file import ELEMENT_BYTES
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine
    from scaleprof.export import ExportOptions, export_onnx, read_metadata
    from scaleprof.models import base_spec

    spec = base_spec("efficientnet_b0")
    for precision in ("fp32", "int8", "fp8"):
        path = directory / f"b0-{precision}.onnx"
        if not path.is_file():
            export_onnx(spec, path, ExportOptions(precision=precision, check_parity=False))
        start = time.perf_counter()
        engine = build_engine(path, BuildSpec(backend="tensorrt-rtx", device="cuda", precision=precision,
                                              shapes=(ShapePoint(1, spec.resolution),)), directory / "engines",
                              force=True).engine
        seconds = time.perf_counter() - start
        m = engine.manifest
        acts = read_metadata(path).counts["acts"]
        planned = (m.extras.get("activation_bytes") or [None])[0]
        ratio = f"{planned / (acts * ELEMENT_BYTES[precision]):.2f}" if planned else "-"
        size = (engine.directory / m.artifact).stat().st_size
        print(f"tensorrt-rtx {precision}: built in {seconds:.1f} s, plan {size / 1e6:.1f} MB, "
              f"convolutions {m.extras.get('conv_precisions')}, activations planned "
              f"{(planned or 0) / 2**20:.1f} MiB = {ratio} x acts x bytes per element ({load()})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="sweep directory (default: a temporary one)")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-plans", action="store_true")
    parser.add_argument("--skip-activations", action="store_true")
    parser.add_argument("--summarize", metavar="DIR", help="only print the figures of a sweep measured earlier")
    args = parser.parse_args(argv)
    if args.summarize:
        summarize(Path(args.summarize))
        return 0
    with tempfile.TemporaryDirectory(prefix="scaleprof-precision-") as tmp:
        if not args.skip_agreement:
            agreement(Path(tmp))
        if not args.skip_activations:
            activations(Path(tmp))
        if not args.skip_plans:
            plans(Path(tmp))
        if not args.skip_sweep:
            sweep(Path(args.out) if args.out else Path(tmp) / "sweep")
    return 0


if __name__ == "__main__":
    sys.exit(main())
