"""ModelSpec: the concrete, fully determined description of one (scaled) model.

Everything downstream (counting, export, engines, the results store) identifies a model by its
ModelSpec; ``build_model(spec)`` must rebuild exactly the same network from it, so a spec read
back from an ONNX file's metadata or from the store is enough to reproduce the model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields

from scaleprof.errors import BadInput


@dataclass(frozen=True)
class ModelSpec:
    model: str                      # timm registry name of the base model, e.g. "efficientnet_b0"
    family: str                     # "efficientnet", "efficientnetv2", "regnet", "tresnet", "resnet"
    strategy: str | None = None     # canonical strategy ("dWr", "d1_w8_g8_r1", "en", ...); None = unscaled
    alpha: float | None = None      # dWr's alpha, when the strategy has one
    scale: float = 1.0              # requested flops factor s (for "en": 2**phi)
    depth_multiplier: float = 1.0   # achieved multipliers, relative to the base model
    width_multiplier: float = 1.0
    group_multiplier: float = 1.0
    resolution: int = 224
    # Family-specific knobs that build_model needs to rebuild exactly this network
    # (e.g. per-stage depths, widths, group widths, RegNet generator parameters). JSON-able values only.
    arch: dict = field(default_factory=dict)
    flops_ratio: float | None = None  # achieved flops / base flops at their own resolutions

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        """The spec ``data`` holds; a BadInput naming what is missing for anything else (a damaged
        store row, cache entry or ONNX metadata)."""
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise BadInput(f"a model spec must be a mapping, got {type(data).__name__}")
        missing = [f.name for f in fields(cls) if f.name not in data and f.default is f.default_factory is MISSING]
        if missing:
            raise BadInput(f"a model spec without {', '.join(missing)}: damaged or not scaleprof's")
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls.from_dict(json.loads(text))

    @property
    def key(self) -> str:
        """Content hash of what determines the network (not the requested labels)."""
        what = {k: v for k, v in self.to_dict().items() if k != "flops_ratio"}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human name, e.g. 'efficientnet_b0 dWr(0.8) x2' or 'resnet50'."""
        if not self.strategy:
            return self.model
        strategy = f"{self.strategy}({self.alpha:g})" if self.alpha is not None else self.strategy
        return f"{self.model} {strategy} x{self.scale:g}"
