"""A network's structure as the latency model sees it: per op group, how many layers, how much work
(flops) and how many bytes they move, derived from the per-layer counts alone (no export, no engine).

Groups follow the profile stage's categories where a counted module maps onto one:

- ``conv``: dense and grouped convolutions; ``depthwise conv``: one input channel per output channel;
- ``SE``: squeeze-and-excitation (1x1-output convolutions after a spatial map, their activations,
  plus the pooling read and the gating multiply of that map, which are no modules);
- ``elementwise``: activations on spatial maps; ``pooling``; ``linear``.

BatchNorm rows are left out: every inference runtime here folds them into the preceding convolution.
Bytes are elements x element size: the input map (the last spatial tensor before the layer), the
output and the weights. Everything is per image except weights, which a batch reads once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaleprof.complexity import count_spec
from scaleprof.core.onnx_file import ELEMENT_BYTES  # noqa: F401 (bytes per element, per precision)

FEATURES_VERSION = 1            # part of the features cache key: bump when the derivation changes
GROUPS = ("conv", "depthwise conv", "SE", "elementwise", "pooling", "linear")
_SQUARES = {k * k for k in range(1, 12, 2)}
_ACTIVATIONS = ("relu", "silu", "swish", "sigmoid", "gelu", "hardswish", "hardsigmoid", "mish", "tanh",
                "elu", "leakyrelu", "prelu", "hardtanh", "quickgelu")
_SKIPPED = ("batchnorm", "groupnorm", "layernorm", "flatten", "identity", "dropout", "droppath")


@dataclass(frozen=True)
class GroupWork:
    layers: int = 0
    flops: int = 0                  # per image
    act_elements: int = 0           # elements read and written on feature maps, per image
    weight_elements: int = 0        # read once per batch


@dataclass(frozen=True)
class NetworkFeatures:
    """The structure of one network at one resolution, per image, independent of batch and precision."""

    groups: dict = field(default_factory=dict)   # group -> GroupWork
    flops: int = 0
    params: int = 0
    acts: int = 0
    resolution: int = 0

    @property
    def layers(self) -> int:
        return sum(g.layers for g in self.groups.values())

    def to_dict(self) -> dict:
        return {"groups": {k: [g.layers, g.flops, g.act_elements, g.weight_elements] for k, g in self.groups.items()},
                "flops": self.flops, "params": self.params, "acts": self.acts, "resolution": self.resolution}

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkFeatures":
        groups = {k: GroupWork(*map(int, v)) for k, v in data["groups"].items()}
        return cls(groups=groups, flops=int(data["flops"]), params=int(data["params"]), acts=int(data["acts"]),
                   resolution=int(data["resolution"]))

    def signature(self) -> tuple:
        """Identity of the network as far as timing goes (s = 1 of every strategy is the same network)."""
        return (self.flops, self.params, self.acts, self.resolution, self.layers)


def _spatial(shape: tuple) -> int:
    return math.prod(shape[2:]) if len(shape) > 2 else 1


def layer_group(row, reads: tuple) -> str | None:
    """The group of one counted layer (a complexity LayerCount) reading a tensor of shape ``reads``,
    or None when it adds no work of its own."""
    kind = row.type.lower()
    shape = tuple(row.output_shape or ())
    if any(word in kind for word in _SKIPPED) or not shape:
        return None
    if "linear" in kind:
        return "linear"
    if "blurpool" in kind:
        return "depthwise conv"
    if "conv" in kind and row.flops:
        if _spatial(shape) == 1:
            return "SE"             # a 1x1-output convolution on pooled maps: squeeze-and-excitation
        per_output = row.flops // max(row.acts, 1)
        channels_in = reads[1] if len(reads) > 1 else 0
        if shape[1] == channels_in and (per_output in _SQUARES or per_output - 1 in _SQUARES):
            return "depthwise conv"
        return "conv"
    if "pool" in kind:
        return "pooling"
    if any(word in kind for word in _ACTIVATIONS):
        return "elementwise" if _spatial(shape) > 1 else "SE"
    return None


def network_features(counts) -> NetworkFeatures:
    """NetworkFeatures from complexity Counts with per-layer rows (counted at any batch)."""
    batch = max(int(getattr(counts, "batch", 1) or 1), 1)
    sums = {g: [0, 0, 0, 0] for g in GROUPS}
    height, width = (counts.resolution,) * 2 if isinstance(counts.resolution, int) else tuple(counts.resolution)
    main: tuple = (batch, 3, height, width)   # the last spatial map: what a spatial layer reads (SE gates it in place)
    last: tuple = main                        # the previous layer's output: what a 1x1-output layer reads
    for row in counts.layers:
        shape = tuple(row.output_shape or ())
        reads = main if _spatial(shape) > 1 else last
        group = layer_group(row, reads)
        if group is not None:
            out, read = math.prod(shape) // batch, math.prod(reads) // batch
            s = sums[group]
            s[0] += 1
            s[1] += int(row.flops)
            if group == "SE" and _spatial(reads) > 1 and "conv" in row.type.lower():
                s[0] += 2                              # the pooling and the gating multiply of the map
                s[2] += 3 * read                       # pool reads it, the multiply reads and writes it
            else:
                s[2] += 2 * out if group == "elementwise" else read + out
            s[3] += int(row.params)
        if shape:
            last = shape
            if _spatial(shape) > 1:
                main = shape
    groups = {g: GroupWork(*v) for g, v in sums.items() if v[0]}
    return NetworkFeatures(groups=groups, flops=int(counts.flops), params=int(counts.params), acts=int(counts.acts),
                           resolution=int(max(height, width)))


def spec_features(spec, resolution: int | None = None) -> NetworkFeatures:
    """Count a ModelSpec (built on the meta device, tens of milliseconds) and derive its features."""
    return network_features(count_spec(spec, resolution=resolution, batch=1))
