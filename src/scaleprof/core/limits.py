"""What one run may ask of this machine, checked before any work: batch sizes, resolutions, threads,
and the memory a network's tensors would take (estimated from its counts, which need no tensors).

Every check is a BadInput that names the limit and why it is there, so an absurd request ends in one
line at once instead of a MemoryError minutes later (or a machine brought to its knees).
"""

from __future__ import annotations

import os

from scaleprof.core.memory import check_fits, machine_memory  # noqa: F401 (the limits' own checks, re-exported)
from scaleprof.core.onnx_file import ELEMENT_BYTES as BYTES_PER_ELEMENT
from scaleprof.errors import BadInput

MAX_BATCH = 4096                    # the largest batch the dynamic exports declare (torch.export Dim max)
MIN_RESOLUTION = 32                 # every family here downsamples by 32
MAX_RESOLUTION = 4096
THREADS_PER_CORE = 4                # more intra-op threads than this per core only adds contention
WORKER_BYTES = 1 << 30              # a preparing worker process: torch, timm and one network, about


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


def check_workers(workers: int, what: str = "workers") -> int:
    """``workers`` processes, each importing torch and preparing a network, unless there are more
    than THREADS_PER_CORE per core or their memory (WORKER_BYTES each) exceeds this machine's."""
    cores = cpu_cores()
    if workers > THREADS_PER_CORE * cores:
        raise BadInput(f"{what} {workers} on {cores} core{'s' if cores > 1 else ''} is above {THREADS_PER_CORE} "
                       f"per core ({THREADS_PER_CORE * cores}): more worker processes only add contention")
    check_fits(workers * WORKER_BYTES, f"{what} {workers}", f"about {WORKER_BYTES >> 30} GB per worker process",
               "ask for fewer workers")
    return workers


def inference_bytes(params: int, acts: int, batch: int, resolution: int, precision: str = "fp32") -> int:
    """An upper bound on the memory of one inference: the weights, the input and every activation
    (per image, ``acts``) of the batch held at once."""
    per = BYTES_PER_ELEMENT.get(precision, 4)
    return per * (int(params) + int(batch) * (3 * int(resolution) ** 2 + int(acts)))
