"""The model zoo: base models by timm registry name, their specs, and build_model(spec).

Looks models up in the registered families (scaleprof.models.families.FAMILIES)."""

from __future__ import annotations

import copy
import difflib
import functools
import json
from typing import TYPE_CHECKING

from scaleprof.errors import BadInput, nearest
from scaleprof.models.families import FAMILIES, Family
from scaleprof.models.spec import ModelSpec

if TYPE_CHECKING:       # torch is imported by build_model, not by importing scaleprof.models
    import torch


def list_models() -> dict[str, list[str]]:
    """{family: [base model names]} for every family scaleprof knows."""
    return {name: list(f.bases) for name, f in FAMILIES.items()}


def all_models() -> list[str]:
    return [m for f in FAMILIES.values() for m in f.bases]


def suggest_model(name: str) -> str | None:
    """The known base model closest to ``name``, or None when nothing is close.

    Case, dashes for underscores and a timm pretrained tag (``tf_efficientnet_b0.ns_jft_in1k``) are
    forgiven outright; otherwise the closest name by difflib's ratio (the better of reading a letter O as
    itself or as a zero), ties going to the first in `scaleprof models` order."""
    models = all_models()
    text = str(name).strip().lower().replace("-", "_").split(".", 1)[0]
    if text in models:
        return text
    best, best_score = None, 0.0
    for candidate in models:
        score = max(difflib.SequenceMatcher(None, t, candidate).ratio() for t in {text, text.replace("o", "0")})
        if score > best_score:
            best, best_score = candidate, score
    return best if best_score >= 0.5 else None


def family_of(model: str) -> Family:
    for family in FAMILIES.values():
        if model in family.bases:
            return family
    suggestion = suggest_model(model)
    hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
    raise BadInput(f"unknown model {model!r}{hint}; scaleprof scales {len(all_models())} timm models in the "
                   f"families {', '.join(FAMILIES)}: `scaleprof models` lists them")


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
    import torch

    if isinstance(spec, str):
        spec = base_spec(spec)
    family = get_family(spec.family)
    arch = copy.deepcopy(spec.arch) or json.loads(_base_arch_json(spec.model))
    if str(device) == "meta":
        model = family.build_on_meta(arch, dtype=dtype)
    elif seed is None:
        model = family.build(arch, device=device, dtype=dtype)
    else:
        devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model = family.build(arch, device=device, dtype=dtype)
    return model.eval()
