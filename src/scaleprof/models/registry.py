"""The model zoo: base models by timm registry name, their specs, and build_model(spec)."""

from __future__ import annotations

import copy
import functools
import json

import torch

from scaleprof.errors import BadInput, nearest
from scaleprof.models.families import FAMILIES, Family, _SkipInitOnMeta
from scaleprof.models.spec import ModelSpec


def list_models() -> dict[str, list[str]]:
    """{family: [base model names]} for every family scaleprof knows."""
    return {name: list(f.bases) for name, f in FAMILIES.items()}


def all_models() -> list[str]:
    return [m for f in FAMILIES.values() for m in f.bases]


def family_of(model: str) -> Family:
    for family in FAMILIES.values():
        if model in family.bases:
            return family
    raise BadInput(f"unknown model {model!r}{nearest(model, all_models())}; "
                   f"choose from: {', '.join(all_models())} (scaleprof models lists them by family)")


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise BadInput(f"unknown family {name!r}{nearest(name, FAMILIES)}; choose from: {', '.join(FAMILIES)}")


@functools.lru_cache(maxsize=None)
def _base_arch_json(model: str) -> str:
    return json.dumps(family_of(model).base_arch(model), sort_keys=True)


def base_spec(model: str) -> ModelSpec:
    """The unscaled base model ``model`` (a timm registry name, e.g. "efficientnet_b0")."""
    if isinstance(model, ModelSpec):
        return model
    family = family_of(model)
    return ModelSpec(model=model, family=family.name, resolution=family.default_resolution(model),
                     arch=json.loads(_base_arch_json(model)), flops_ratio=1.0)


def build_model(spec: ModelSpec | str, device="cpu", dtype=None, seed: int | None = 0) -> torch.nn.Module:
    """The network ``spec`` describes, with random weights, in eval mode.

    ``device="meta"`` builds it without memory (for counting). ``seed`` makes the random weights
    reproducible (None: whatever torch's global generator gives).
    """
    if isinstance(spec, str):
        spec = base_spec(spec)
    family = get_family(spec.family)
    arch = copy.deepcopy(spec.arch) or json.loads(_base_arch_json(spec.model))
    if str(device) == "meta":
        with _SkipInitOnMeta():
            model = family.build(arch, device=device, dtype=dtype)
    elif seed is None:
        model = family.build(arch, device=device, dtype=dtype)
    else:
        devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model = family.build(arch, device=device, dtype=dtype)
    return model.eval()
