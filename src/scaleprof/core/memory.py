"""How much memory this process may use, and the check that a request fits in it (BadInput naming
what needs how much). Lowest of the core modules: the ONNX reader checks a file fits before parsing it."""

from __future__ import annotations

import os
import resource

from scaleprof.errors import BadInput


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


def check_fits(needed: int, what: str, of: str = "weights, input and activations",
               advice: str = "choose a smaller scale, batch or resolution") -> None:
    """BadInput when ``needed`` bytes exceed what this machine (or this process's limit) has."""
    available = machine_memory()
    if needed > available:
        raise BadInput(f"{what} needs about {_gb(needed)} of memory ({of}); this machine allows {_gb(available)}: "
                       f"{advice}")


def _gb(n: int) -> str:
    return f"{n / 2**30:.3g} GB" if n < 2**30 * 1e6 else f"{n / 2**30:.2e} GB"
