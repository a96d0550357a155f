"""Counting the PyTorch network of a ModelSpec: build it on the meta device, count it by the cost
rules of scaleprof.core.costs (pycls conventions, docs/conventions.md#counting).

Importing this module does not import torch; counting does.
"""

from __future__ import annotations

from scaleprof.core import limits
from scaleprof.core.counts import Counts
from scaleprof.core.limits import check_batch
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput
from scaleprof.models import FAMILIES, base_spec, build_model


def count_spec(spec, resolution: int | None = None, batch: int = 1) -> Counts:
    """Counts of the network a ModelSpec (or base model name) describes, at its resolution or
    ``resolution``. Built on the meta device: a few tens of milliseconds per configuration."""
    from scaleprof.core.costs import count_model

    if isinstance(spec, str):
        spec = base_spec(spec)
    resolution = spec.resolution if resolution is None else resolution
    check_resolution(resolution, spec.model)
    check_batch(batch)
    model = build_model(spec, device="meta")
    try:
        return count_model(model, resolution, batch=batch)
    except (RuntimeError, ValueError) as err:  # shape errors: the network cannot take this input
        raise BadInput(f"{spec.model} cannot take resolution {resolution}: {first_line(err)}") from None


def check_resolution(resolution, model: str = "the model") -> int:
    """``resolution`` unless no network of ``model`` takes it: outside scaleprof.core.limits' range, or
    not a multiple of what the model's family needs (EfficientDet: 128); BadInput then."""
    resolution = limits.check_resolution(resolution, model)
    family = next((f for f in FAMILIES.values() if model in f.bases), None)
    if family is not None:
        family.check_resolution(model, resolution)
    return resolution
