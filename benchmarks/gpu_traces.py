"""Raw per-layer outputs from a real GPU, kept as test fixtures.

Profiles EfficientNet-B0 at batch 1 (224x224) on the GPU with each backend that runs there (PyTorch on
CUDA; ONNX Runtime's CUDA provider when onnxruntime-gpu is installed) and writes, into DIR:
  ort_cuda_trace.json       ONNX Runtime's own Chrome-trace profile (as the profiler wrote it)
  ort_cuda_layers.json      the LayerTrace scaleprof parsed from it
  torch_cuda_layers.json    the raw torch.profiler trace per module (kernel times per iteration)
  environment.json          GPU name, driver clocks, versions
Usage: python -m benchmarks.gpu_traces DIR   (prints what it skipped and why)
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path


def main(out: Path) -> int:
    import torch

    from scaleprof.engines import BuildSpec, ShapePoint, build_engine, get_backend
    from scaleprof.errors import EnvironmentProblem
    from scaleprof.export import export_onnx
    from scaleprof.export.rebuild import rebuild_model
    from scaleprof.models import base_spec
    from scaleprof.profile import environment_for

    if not torch.cuda.is_available():
        print("gpu_traces: no CUDA GPU here; nothing to record")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scaleprof-gpu-traces-"))
    onnx_path = work / "efficientnet_b0.onnx"
    export_onnx(base_spec("efficientnet_b0"), onnx_path)
    shape = ShapePoint(1, 224)
    for backend in ("torch", "ort"):
        try:
            get_backend(backend)              # raises when the runtime is missing (never returns one unavailable)
        except EnvironmentProblem as err:
            print(f"gpu_traces: {backend} skipped: {err}")
            continue
        spec = BuildSpec(backend=backend, device="cuda", shapes=(shape,))
        try:
            engine = build_engine(onnx_path, spec, work / "engines", model_source=rebuild_model).engine
        except Exception as err:   # record what did not run, keep the rest
            print(f"gpu_traces: {backend} on cuda failed: {err}")
            continue
        with engine:
            if backend == "ort":
                trace = engine.profile_layers(shape, 10, keep_trace=out / "ort_cuda_trace.json")
            else:  # the raw per-module trace, before folded norms are merged into their convs
                trace = engine.profile_modules(shape, 10)
            name = "ort_cuda_layers.json" if backend == "ort" else "torch_cuda_layers.json"
            (out / name).write_text(json.dumps(dataclasses.asdict(trace), indent=1))
            env = environment_for(engine)
        (out / "environment.json").write_text(json.dumps(env.to_dict(), indent=1))
        print(f"gpu_traces: {backend}: {len(trace.events)} layer events on {env.device_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-traces")))
