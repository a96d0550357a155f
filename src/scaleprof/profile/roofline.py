"""Roofline: a device's peak compute and memory bandwidth, measured once and cached per device.

Compute peak: the best of a few large square matmuls (multiply-adds per second, the unit of the
pycls flops the counts use). Bandwidth: the best of a few large array copies (bytes read +
written per second). The lower roof of a layer is max(flops / peak, bytes / bandwidth); its
attainment is that bound over the measured time (1.0 = at the physical limit).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scaleprof.core.files import read_limited, user_cache_dir, write_atomic
from scaleprof.core.text import slug
from scaleprof.engines.devices import name_of_device
from scaleprof.errors import BadInput

CALIBRATION_VERSION = 1


@dataclass(frozen=True)
class DevicePeaks:
    device_name: str
    device: str
    precision: str
    threads: int | None
    macs_per_s: float          # multiply-adds per second (pycls flops/s)
    bytes_per_s: float         # copy bandwidth, read + write
    method: str
    measured_at: float
    version: int = CALIBRATION_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def bound(self, flops: int, nbytes: int | None) -> tuple[float, str]:
        """(lower-bound milliseconds, 'compute' or 'memory') for a layer's work."""
        compute = flops / self.macs_per_s * 1e3
        memory = (nbytes or 0) / self.bytes_per_s * 1e3
        return (compute, "compute") if compute >= memory else (memory, "memory")


def default_cache_dir() -> Path | None:
    return user_cache_dir()


def cache_path(cache_dir: Path, device_name: str, device: str, precision: str, threads: int | None) -> Path:
    kind = "gpu" if device.startswith("cuda") else f"cpu-t{threads or 'default'}"
    return Path(cache_dir) / "roofline" / f"{slug(device_name, 'device')}-{kind}-{precision}.json"


def device_peaks(device: str = "cpu", device_name: str | None = None, precision: str = "fp32",
                 threads: int | None = None, cache_dir: str | Path | None = None,
                 recalibrate: bool = False) -> DevicePeaks:
    """Cached peaks for this device (measured on first use, a few seconds)."""
    if device_name is None:
        device_name = name_of_device(device)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_path(cache_dir, device_name, device, precision, threads) if cache_dir is not None else None
    if path is not None and path.is_file() and not recalibrate:
        try:
            data = json.loads(read_limited(path, 1 << 20, "roofline cache"))
            if data.get("version") == CALIBRATION_VERSION:
                return DevicePeaks(**data)
        except (ValueError, TypeError, AttributeError, RecursionError, OSError, BadInput):
            pass                                  # unreadable cache: measure again
    measure = _measure_cuda if device.startswith("cuda") else _measure_cpu
    macs, bw, method = measure(device, precision, threads)
    peaks = DevicePeaks(device_name, device, precision, threads, macs, bw, method, time.time())
    if path is not None:                          # without a cache directory: measured every time
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(peaks.to_dict(), indent=2))
    return peaks


def engine_peaks(engine, cache_dir: str | Path | None = None) -> DevicePeaks:
    """The peaks of the device, precision and threads ``engine`` was built for."""
    m = engine.manifest
    return device_peaks(m.device, m.device_name, m.precision, m.threads, cache_dir=cache_dir)


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _measure_cpu(device: str, precision: str, threads: int | None) -> tuple[float, float, str]:
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        n = 2048
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)                   # warm-up
        seconds = _best(lambda: torch.mm(a, b, out=out), 5)
        macs = n ** 3 / seconds
        size = 64 * 2 ** 20 // 4                  # 64 MiB of float32: far beyond the caches
        src = torch.randn(size)
        dst = torch.empty(size)
        dst.copy_(src)
        seconds = _best(lambda: dst.copy_(src), 8)
        bandwidth = 2 * size * 4 / seconds
    finally:
        torch.set_num_threads(previous)
    return macs, bandwidth, f"torch.mm {n}x{n} fp32, copy 64 MiB; best of runs; {threads or previous} threads"


def _measure_cuda(device: str, precision: str, threads: int | None) -> tuple[float, float, str]:
    import torch

    dtype = torch.float16 if precision == "fp16" else torch.float32
    dev = torch.device(device)
    n = 8192
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    out = torch.empty(n, n, device=dev, dtype=dtype)

    def timed(fn, repeats):
        fn()
        torch.cuda.synchronize(dev)
        best = float("inf")
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        return best

    macs = n ** 3 / timed(lambda: torch.mm(a, b, out=out), 10)
    size = 512 * 2 ** 20 // 4
    src = torch.empty(size, device=dev)
    dst = torch.empty(size, device=dev)
    bandwidth = 2 * size * 4 / timed(lambda: dst.copy_(src), 10)
    return macs, bandwidth, f"torch.mm {n}x{n} {precision}, copy 512 MiB; CUDA events, best of runs"
