"""Building networks on torch's meta device (shapes without memory) quickly.

Weight initialisation is meaningless on the meta device and costs most of a meta build (torch's
meta ``normal_`` goes through the reference implementation): ``SkipInitOnMeta`` skips the in-place
fills there. ``create_on_meta`` creates a timm model that way, for reading its architecture.

Importing this module does not import torch; entering ``SkipInitOnMeta`` does.
"""

from __future__ import annotations

import functools

_FILLS = frozenset({"normal_", "uniform_", "zero_", "fill_", "trunc_normal_", "copy_", "kaiming_normal_",
                    "kaiming_uniform_", "xavier_uniform_", "xavier_normal_", "ones_", "zeros_", "constant_",
                    "orthogonal_", "bernoulli_", "exponential_", "clamp_", "erfinv_", "mul_", "add_"})


@functools.lru_cache(maxsize=None)
def _skip_init_mode():
    """The TorchFunctionMode class behind SkipInitOnMeta (defined on first use: it needs torch)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class SkipInitOnMetaMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") in _FILLS:
                target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
                if isinstance(target, torch.Tensor) and target.is_meta:
                    return target
            return func(*args, **kwargs)

    return SkipInitOnMetaMode


class SkipInitOnMeta:
    """A context manager in which in-place weight fills of meta tensors do nothing (tensors on real
    devices are initialised as usual). A torch function mode; torch is imported when it is entered."""

    def __init__(self):
        self._modes = []          # one per (possibly nested) entry

    def __enter__(self):
        mode = _skip_init_mode()()
        self._modes.append(mode)
        return mode.__enter__()

    def __exit__(self, *exc):
        return self._modes.pop().__exit__(*exc)


def create_on_meta(model: str):
    """timm's ``model`` (a registry name), created on the meta device without initialising weights."""
    import timm

    with SkipInitOnMeta():
        return timm.create_model(model, device="meta")
