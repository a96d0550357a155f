"""What one run may ask of this machine, checked before any work: batch sizes, resolutions, threads,
and the memory a network's tensors would take (estimated from its counts, which need no tensors).

Every check is a BadInput that names the limit and why it is there, so an absurd request ends in one
line at once instead of a MemoryError minutes later (or a machine brought to its knees).
"""

from __future__ import annotations

import os
import resource

from scaleprof.core.onnx_file import ELEMENT_BYTES as BYTES_PER_ELEMENT
from scaleprof.errors import BadInput

MAX_BATCH = 4096                    # the largest batch the dynamic exports declare (torch.export Dim max)
MIN_RESOLUTION = 32                 # every family here downsamples by 32
MAX_RESOLUTION = 4096
THREADS_PER_CORE = 4                # more intra-op threads than this per core only adds contention


def cpu_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_batch(batch, what: str = "batch") -> int:
    """``batch`` as an int in 1..MAX_BATCH; BadInput otherwise."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise BadInput(f"{what} must be a positive integer, got {batch!r}")
    if batch > MAX_BATCH:
        raise BadInput(f"{what} {batch} is above the largest batch scaleprof runs ({MAX_BATCH}, the most "
                       "the dynamic exports declare)")
    return batch


def check_resolution(resolution, model: str = "the model") -> int:
    """``resolution`` unless it is not an integer the networks can take (32..4096): BadInput."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or \
            not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise BadInput(f"resolution {resolution!r} is not one {model} can take: give an integer from "
                       f"{MIN_RESOLUTION} (the network's total stride) to {MAX_RESOLUTION}")
    return resolution


def check_threads(threads, what: str = "threads") -> int | None:
    """``threads`` (None: the runtime's default) as an int in 1..THREADS_PER_CORE x the cores."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise BadInput(f"{what} must be a positive integer, got {threads!r}")
    cores = cpu_cores()
    if threads > THREADS_PER_CORE * cores:
        raise BadInput(f"{what} {threads} on {cores} core{'s' if cores > 1 else ''} is above {THREADS_PER_CORE} "
                       f"per core ({THREADS_PER_CORE * cores}): more threads only add contention")
    return threads


def machine_memory() -> int:
    """Bytes this process may use at most: physical memory, lowered by a cgroup limit and by the
    address-space limit (less what is mapped already)."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(max(0, soft - _mapped_bytes()))
    return min(limits)


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def inference_bytes(params: int, acts: int, batch: int, resolution: int, precision: str = "fp32") -> int:
    """An upper bound on the memory of one inference: the weights, the input and every activation
    (per image, ``acts``) of the batch held at once."""
    per = BYTES_PER_ELEMENT.get(precision, 4)
    return per * (int(params) + int(batch) * (3 * int(resolution) ** 2 + int(acts)))


def check_fits(needed: int, what: str) -> None:
    """BadInput when ``needed`` bytes exceed what this machine (or this process's limit) has."""
    available = machine_memory()
    if needed > available:
        raise BadInput(f"{what} needs about {_gb(needed)} of memory (weights, input and activations, from "
                       f"its counts); this machine allows {_gb(available)}: choose a smaller scale, batch "
                       "or resolution")


def _gb(n: int) -> str:
    return f"{n / 2**30:.3g} GB" if n < 2**30 * 1e6 else f"{n / 2**30:.2e} GB"
