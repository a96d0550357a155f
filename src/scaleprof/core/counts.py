"""Counts: flops, params and activations per layer and in total (pycls conventions, docs/conventions.md#counting).

Pure records, no torch: the torch walk (scaleprof.core.costs) and the ONNX counter
(scaleprof.complexity.onnx_count) both produce them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CONVENTION = (
    "pycls: flops = multiply-adds (conv/linear, + bias); params = learnable scalars; "
    "acts = output elements of conv, linear and max-pool layers; per image"
)


@dataclass(frozen=True)
class LayerCount:
    name: str                       # qualified module name (torch) or node name (ONNX)
    type: str                       # module class (torch) or op_type (ONNX)
    output_shape: tuple[int, ...]   # for the counted batch size
    flops: int                      # per image
    params: int
    acts: int                       # per image


@dataclass(frozen=True)
class Counts:
    flops: int                      # per image, sums of the layers
    params: int
    acts: int
    resolution: int
    batch: int = 1
    layers: tuple[LayerCount, ...] = ()
    convention: str = CONVENTION
    layer_kinds: dict = field(default_factory=dict)   # executed layers per kind (scaleprof.core.layer_count.KINDS)

    @property
    def batch_flops(self) -> int:
        return self.flops * self.batch

    @property
    def batch_acts(self) -> int:
        return self.acts * self.batch

    @property
    def layer_count(self) -> int | None:
        """Layers (kernels) executed per inference: conv, linear, elementwise and other operations;
        None where they were not counted."""
        return sum(self.layer_kinds.values()) if self.layer_kinds else None

    @classmethod
    def from_layers(cls, layers, h: int, w: int, batch: int, convention: str = CONVENTION,
                    layer_kinds: dict | None = None) -> "Counts":
        """Counts whose totals are the sums of ``layers`` (an H x W input, per image)."""
        layers = tuple(layers)
        return cls(flops=sum(r.flops for r in layers), params=sum(r.params for r in layers),
                   acts=sum(r.acts for r in layers), resolution=h if h == w else (h, w), batch=batch,
                   layers=layers, convention=convention, layer_kinds=dict(layer_kinds or {}))

    def totals(self) -> dict:
        return {"flops": self.flops, "params": self.params, "acts": self.acts}

    def to_dict(self, per_layer: bool = True) -> dict:
        data = asdict(self)
        data["layer_count"] = self.layer_count
        if not per_layer:
            data.pop("layers")
        return data
