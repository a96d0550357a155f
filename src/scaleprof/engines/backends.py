"""Backend registry: names -> Backend classes, imported only when asked for.

Importing scaleprof.engines imports no runtime: ``get_backend("tensorrt")`` is the first place
TensorRT is imported, so a host without it can still use every other backend. ``BACKENDS`` is the
one list of backend names (other code imports it); a backend module defines one Backend subclass,
registered by adding a line here. Device strings and host questions are scaleprof.engines.devices'.
"""

from __future__ import annotations

import importlib

from scaleprof.core.onnx_file import PRECISIONS
from scaleprof.engines.base import Backend, ModelSource
from scaleprof.engines.devices import check_device
from scaleprof.errors import BadInput, EnvironmentProblem, nearest

# name -> (module, class, what to install when its runtime is missing)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "ort": ("scaleprof.engines.ort", "OrtBackend", "pip install onnxruntime (or 'scaleprof[gpu]' for CUDA)"),
    "torch": ("scaleprof.engines.torch_backend", "TorchBackend", "pip install torch"),
    "tensorrt": ("scaleprof.engines.tensorrt.backend", "TensorRTBackend",
                 "pip install 'scaleprof[tensorrt]' on a host with an NVIDIA GPU"),
    "tensorrt-rtx": ("scaleprof.engines.tensorrt.rtx", "TensorRTRTXBackend",
                     "pip install 'scaleprof[tensorrt-rtx]' (builds without a GPU; runs on RTX-class GPUs)"),
}

# Spellings users type for a backend -> its name
ALIASES = {"onnxruntime": "ort", "pytorch": "torch", "trt": "tensorrt", "trt-rtx": "tensorrt-rtx"}

# Backends whose engines run on GPUs only: their default device is cuda
GPU_ONLY = ("tensorrt", "tensorrt-rtx")

# The precisions each backend builds (int8/fp8 from QDQ files of that type). ONNX Runtime's CPU
# EP would only emulate fp8 in float; PyTorch runs the float network the file was exported from.
BUILDS: dict[str, tuple[str, ...]] = {"ort": ("fp32", "fp16", "int8"), "torch": ("fp32", "fp16"),
                                      "tensorrt": PRECISIONS, "tensorrt-rtx": PRECISIONS}


def builds(backend: str, precision: str) -> bool:
    """Whether ``backend`` (any spelling) builds ``precision`` engines."""
    return precision in BUILDS.get(canonical_name(backend), PRECISIONS)

_instances: dict[str, Backend] = {}


def canonical_name(name: str) -> str:
    """The backend's name for any accepted spelling of it (an unknown name is returned as is)."""
    return ALIASES.get(name, name)


def get_backend(name: str, *, model_source: ModelSource | None = None) -> Backend:
    """The backend called ``name`` (one shared instance per process; handed ``model_source``, a
    copy that carries it). Unknown name: BadInput; runtime package missing: EnvironmentProblem
    naming what to install."""
    name = canonical_name(name)
    if name not in BACKENDS:
        raise BadInput(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}{nearest(name, BACKENDS)}")
    if name not in _instances:
        _instances[name] = _create(name)
    return _instances[name].with_model_source(model_source)


def _create(name: str) -> Backend:
    module_name, class_name, hint = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name or module_name.startswith(f"{err.name}."):   # scaleprof's own module is missing
            raise EnvironmentProblem(f"backend {name!r} is not part of this scaleprof installation") from None
        raise EnvironmentProblem(f"backend {name!r} needs the {err.name!r} package: {hint}") from None
    backend = getattr(module, class_name)()
    if not backend.available():
        why = getattr(backend, "unavailable_reason", lambda: "")() or backend.install_hint or hint
        raise EnvironmentProblem(f"backend {name!r} cannot run here: {why}")
    return backend


def backend_for(name: str, device: str, *, model_source: ModelSource | None = None) -> Backend:
    """get_backend plus the device check: the device is well formed and the backend can use it here."""
    check_device(device)
    backend = get_backend(name, model_source=model_source)
    backend.check_device(device)
    return backend
