"""Devices: what a device string means and what the host has.

A device is ``cpu``, ``cuda`` or ``cuda:N`` (``check_device``). The backends put the device's
name (CPU model or GPU name) in the engine cache key; the profile stage records it with every
measurement. Nothing here imports torch at module level: it is imported for CUDA questions only,
and the GPU helpers fall back on ``nvidia-smi`` where torch sees no GPU (a trtexec-only host).
"""

from __future__ import annotations

import functools
import platform
import re
import shutil
import subprocess
from pathlib import Path

from scaleprof.errors import BadInput, nearest

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_device(device: str) -> str:
    """'cpu', 'cuda' or 'cuda:N'; anything else is BadInput."""
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):      # "$" would let "cpu\n" in
        raise BadInput(f"unknown device {device!r}: use cpu, cuda or cuda:N{nearest(device, ('cpu', 'cuda'))}")
    return device


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


def torch_sees_a_gpu() -> bool:
    """True when torch imports and sees a CUDA GPU (False without torch, never an error)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:           # a broken CUDA install can fail in many ways: it is simply no GPU here
        return False


def gpu_present() -> bool:
    """A CUDA GPU that torch sees, or an NVIDIA driver (nvidia-smi on PATH)."""
    return torch_sees_a_gpu() or shutil.which("nvidia-smi") is not None


def gpu_name(index: int) -> str | None:
    """The name of GPU ``index`` from torch, else from nvidia-smi; None when neither knows it."""
    if torch_sees_a_gpu():
        import torch

        try:
            return torch.cuda.get_device_name(index)
        except Exception:       # an index torch does not know: ask the driver
            pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", f"--id={index}"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def compute_capability(index: int) -> str:
    """'9.0' for GPU ``index`` as torch reports it; '' when torch cannot say."""
    try:
        import torch

        major, minor = torch.cuda.get_device_capability(index)
        return f"{major}.{minor}"
    except Exception:           # no torch, no GPU or no driver: the capability is simply unknown
        return ""
