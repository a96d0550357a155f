"""Backend registry: names -> Backend classes, imported only when asked for.

Importing scaleprof.engines imports no runtime: ``get_backend("tensorrt")`` is the first place
TensorRT is imported, so a host without it can still use every other backend. A backend module
defines one Backend subclass; register a new one by adding a line to ``BACKENDS``.
"""

from __future__ import annotations

import functools
import importlib
import platform
import re
from pathlib import Path

from scaleprof.engines.base import Backend
from scaleprof.errors import BadInput, EnvironmentProblem, nearest

# name -> (module, class, what to install when its runtime is missing)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "ort": ("scaleprof.engines.ort", "OrtBackend", "pip install onnxruntime (or 'scaleprof[gpu]' for CUDA)"),
    "torch": ("scaleprof.engines.torch_backend", "TorchBackend", "pip install torch"),
    "tensorrt": ("scaleprof.engines.tensorrt", "TensorRTBackend",
                 "pip install 'scaleprof[tensorrt]' on a host with an NVIDIA GPU"),
}

# Spellings users type for a backend -> its name
ALIASES = {"onnxruntime": "ort", "pytorch": "torch", "trt": "tensorrt"}

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")

_instances: dict[str, Backend] = {}


def check_device(device: str) -> str:
    """'cpu', 'cuda' or 'cuda:N'; anything else is BadInput."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise BadInput(f"unknown device {device!r}: use cpu, cuda or cuda:N{nearest(device, ('cpu', 'cuda'))}")
    return device


# Device helpers shared by the backends (torch is imported only for CUDA devices).


def device_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


@functools.lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU model, as /proc/cpuinfo (or the platform) names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def cuda_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(device_index(device))


def name_of_device(device: str) -> str:
    """CPU model or GPU name for ``device`` (what the backends put in the cache key)."""
    return cuda_name(device) if device.startswith("cuda") else cpu_name()


def cuda_present(device: str) -> bool:
    import torch

    return torch.cuda.is_available() and device_index(device) < torch.cuda.device_count()


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (one instance per process). Unknown name: BadInput; runtime
    package missing: EnvironmentProblem naming what to install."""
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise BadInput(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}{nearest(name, BACKENDS)}")
    if name in _instances:
        return _instances[name]
    module_name, class_name, hint = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:          # the backend module itself is not in this installation
            raise EnvironmentProblem(f"backend {name!r} is not part of this scaleprof installation") from None
        raise EnvironmentProblem(f"backend {name!r} needs the {err.name!r} package: {hint}") from None
    backend = getattr(module, class_name)()
    if not backend.available():
        raise EnvironmentProblem(f"backend {name!r} cannot run here: {backend.install_hint or hint}")
    _instances[name] = backend
    return backend


def backend_for(name: str, device: str) -> Backend:
    """get_backend plus the device check: the device is well formed and the backend can use it here."""
    check_device(device)
    backend = get_backend(name)
    backend.check_device(device)
    return backend
