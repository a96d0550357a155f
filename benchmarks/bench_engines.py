"""Engines benchmark: EfficientNet-B0 at batch 1 on this machine.

Prints, from one run:
  * the end-to-end latency of the ONNX Runtime engine and of PyTorch eager (the same model, same
    weights, same input shape, same thread count), and their ratio;
  * the time of a fresh engine build versus a cache hit (the same build asked for again), per backend.

Figures are printed, never asserted. Usage: python -m benchmarks.bench_engines [--model M]
[--resolution R] [--threads N] [--device cpu|cuda] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BLOCK = 10


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_b0")
    parser.add_argument("--resolution", type=int, help="default: the model's own (224 for B0)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads for both backends")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds (both backends, alternating)")
    parser.add_argument("--hits", type=int, default=10, help="cache hits to time")
    parser.add_argument("--backends", default="ort,torch", help="comma-separated (default ort,torch; on cuda "
                        "torch is timed eager and with CUDA-graph replay)")
    args = parser.parse_args(argv)

    import dataclasses

    from scaleprof.engines import BuildSpec, ShapePoint, build_engine
    from scaleprof.export.onnx_export import export_onnx
    from scaleprof.export.rebuild import rebuild_model
    from scaleprof.models import base_spec
    from scaleprof.profile.stats import latency_stats

    spec = base_spec(args.model)
    if args.resolution:
        spec = dataclasses.replace(spec, resolution=args.resolution)
    shape = ShapePoint(args.batch, spec.resolution)
    threads = None if args.device != "cpu" else args.threads

    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        onnx_path = Path(tmp) / f"{args.model}.onnx"
        t = time.perf_counter()
        export_onnx(spec, onnx_path)
        print(f"{spec.label} at {shape} on {args.device}, threads={threads}: "
              f"exported in {time.perf_counter() - t:.1f} s ({onnx_path.stat().st_size / 1e6:.1f} MB)")

        cache = Path(tmp) / "engines"
        variants = {"ort": ("ort", ()), "torch": ("torch", (("cuda_graph", False),) if args.device != "cpu" else ())}
        if args.device != "cpu":
            variants["torch+cuda-graph"] = ("torch", (("cuda_graph", True),))
        variants = {k: v for k, v in variants.items() if v[0] in args.backends.split(",")}
        engines, builds = {}, {}
        for label, (backend, options) in variants.items():
            bspec = BuildSpec(backend=backend, device=args.device, threads=threads, shapes=(shape,), options=options)
            fresh = build_engine(onnx_path, bspec, cache, model_source=rebuild_model)
            hits = []
            for _ in range(args.hits):
                hit = build_engine(onnx_path, bspec, cache, model_source=rebuild_model)
                assert hit.cached
                hits.append(hit.seconds)
            builds[label] = (fresh.seconds, statistics.median(hits), min(hits), max(hits))
            engines[label] = fresh.engine

        # Both engines loaded, then timed in alternating blocks of BLOCK iterations (ORT, torch, ORT, ...)
        # so that both see the same machine: on a shared host the load drifts, and two long back-to-back
        # runs would bias the ratio. Blocks, not single calls: ORT's idle threads spin briefly after a run.
        runners = {}
        for backend, engine in engines.items():
            engine.load()
            runners[backend] = engine.runner(shape)
            warm_until = time.perf_counter() + 0.5
            for i in range(1000):
                runners[backend]()
                if i >= 5 and time.perf_counter() > warm_until:
                    break
        samples = {b: [] for b in runners}
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds or min(len(v) for v in samples.values()) < 20:
            for backend, runner in runners.items():
                samples[backend].extend(runner() for _ in range(BLOCK))
            if time.perf_counter() - start > 10 * args.seconds:
                break
        elapsed = time.perf_counter() - start
        stats = {b: latency_stats(v, batch=shape.batch, total_s=elapsed, timing_method=runners[b].timing_method)
                 for b, v in samples.items()}
        for engine in engines.values():
            engine.release()

    first = next(iter(engines.values())).manifest
    title = {"ort": "ONNX Runtime {} engine", "torch": "PyTorch {} eager", "torch+cuda-graph": "PyTorch {} CUDA graph"}
    name = {b: title[b].format(e.manifest.backend_version) for b, e in engines.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nEnd-to-end latency, batch {shape.batch} ({first.device_name}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} during the run):")
    for backend, s in stats.items():
        print(f"  {name[backend]:<38} median {s.median:8.3f} ms  95% CI [{s.ci95[0]:.3f}, {s.ci95[1]:.3f}]  "
              f"CV {s.cv * 100:4.1f}%  n={s.iterations}  ({s.timing_method})")
    if "ort" in stats and "torch" in stats:
        print(f"  ratio PyTorch eager / ORT engine: {stats['torch'].median / stats['ort'].median:.2f}x")
    if "torch+cuda-graph" in stats:
        print(f"  ratio PyTorch eager / CUDA graph: {stats['torch'].median / stats['torch+cuda-graph'].median:.2f}x")

    print("\nEngine build, fresh vs cache hit (build_engine wall time, ONNX hash and artifact check included):")
    for backend, (fresh, hit_median, hit_min, hit_max) in builds.items():
        print(f"  {backend:<16} fresh {fresh * 1e3:9.1f} ms   cached median {hit_median * 1e3:7.1f} ms "
              f"(min {hit_min * 1e3:.1f}, max {hit_max * 1e3:.1f}, n={args.hits})   speed-up {fresh / hit_median:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
