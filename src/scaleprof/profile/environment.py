"""Where a measurement was taken: backend, device, threads, library versions, clocks."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata

from scaleprof import __version__
from scaleprof.engines.devices import device_index, name_of_device
from scaleprof.profile.types import Environment

PACKAGES = ("torch", "onnx", "onnxruntime", "onnxruntime-gpu", "timm", "numpy", "tensorrt")


def cpu_mhz() -> float | None:
    """Mean current clock over the cores, where /proc/cpuinfo shows it."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":", 1)[1]) for line in f if line.lower().startswith("cpu mhz")]
    except (OSError, ValueError):
        return None
    return round(sum(mhz) / len(mhz), 1) if mhz else None


def gpu_clocks(device: str) -> dict:
    """SM and memory clocks (MHz) from nvidia-smi where it is installed; {} otherwise."""
    if not shutil.which("nvidia-smi"):
        return {}
    fields = ("clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem")
    try:
        out = subprocess.run(["nvidia-smi", f"--id={device_index(device)}", f"--query-gpu={','.join(fields)}",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    values = [v.strip() for v in out.stdout.strip().split(",")]
    if out.returncode != 0 or len(values) != len(fields):
        return {}
    return {f"{k.replace('.', '_')}_mhz": float(v) for k, v in zip(fields, values) if _is_number(v)}


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def package_versions() -> dict:
    versions = {"python": platform.python_version(), "scaleprof": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def capture_environment(backend: str, backend_version: str, device: str = "cpu",
                        threads: int | None = None, device_name: str | None = None) -> Environment:
    """The environment of a measurement. ``threads`` None means the backend's default (recorded
    with the CPU count so that two defaults on different machines do not compare equal)."""
    if device_name is None:
        device_name = name_of_device(device)
    clocks = gpu_clocks(device) if device.startswith("cuda") else {}
    mhz = cpu_mhz()
    if mhz is not None:
        clocks["cpu_mhz"] = mhz
    versions = package_versions()
    versions["cpu_count"] = os.cpu_count()
    versions["platform"] = f"{sys.platform}-{platform.machine()}"
    return Environment(backend=backend, backend_version=backend_version, device=device,
                       device_name=device_name, threads=threads, host=socket.gethostname(),
                       versions=versions, clocks=clocks)


def environment_for(engine) -> Environment:
    """The environment of a built engine, from its manifest (what it was built with)."""
    m = engine.manifest
    return capture_environment(m.backend, m.backend_version, m.device, m.threads, m.device_name)
