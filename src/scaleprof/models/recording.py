"""Reading a base model's architecture from timm itself: record the arguments timm's builders receive.

A timm entry point (``timm.create_model("resnet50")``) calls a module-level builder function with the
architecture's constructor arguments; ``recording`` wraps such functions for a moment and keeps
their bound arguments, so a family stores exactly what timm builds with, never a copy of it.
``is_jsonable`` and ``NOT_ARCH`` say which of those arguments a ModelSpec's ``arch`` can keep.
"""

from __future__ import annotations

import contextlib
import functools
import inspect

from scaleprof.models.meta import create_on_meta

_JSON_TYPES = (int, float, str, bool, type(None))
# Arguments timm's entry points pass along that do not describe the architecture.
NOT_ARCH = frozenset({"pretrained", "device", "dtype", "cache_dir", "pretrained_cfg", "pretrained_cfg_overlay",
                      "features_only", "pretrained_strict", "variant"})


def is_jsonable(value) -> bool:
    """True when ``value`` survives a JSON round trip as itself (what ModelSpec.arch may hold)."""
    if isinstance(value, _JSON_TYPES):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_jsonable(v) for k, v in value.items())
    return False


@contextlib.contextmanager
def recording(module, names, calls: list):
    """Temporarily wrap module-level functions ``names`` so that each call appends
    (name, {argument: value}) to ``calls`` (defaults applied, ``**kwargs`` merged in)."""
    originals = {n: getattr(module, n) for n in names}

    def wrap(name, fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def recorder(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            extra = arguments.pop("kwargs", {}) or {}
            calls.append((name, {**arguments, **extra}))
            return fn(*args, **kwargs)

        return recorder

    try:
        for n, fn in originals.items():
            setattr(module, n, wrap(n, fn))
        yield calls
    finally:
        for n, fn in originals.items():
            setattr(module, n, fn)


def builder_arguments(module, builder: str, model: str) -> dict:
    """The arguments timm's ``module.builder`` receives when ``model`` is created (on meta)."""
    calls: list = []
    with recording(module, [builder], calls):
        create_on_meta(model)
    return dict(calls[0][1])
