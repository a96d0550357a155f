"""What every model family is: how to read a base model's knobs from timm and rebuild with new ones.

A family keeps a base model's architecture as JSON-able knobs (``ModelSpec.arch``): blocks per stage
under ``depth_key``, and the per-stage widths (``width_key``) and group widths (``group_width_key``)
where it stores them. The accessors here read those knobs for every family; a family only writes
what is its own (``base_arch``, ``build``, ``with_knobs``, widths it derives rather than stores).

Every family also tells which (stage, block) a qualified module name belongs to, so the scaling
search can count a network once and derive the counts of every depth combination exactly
(blocks after the first in a stage are identical).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from scaleprof.core.limits import MIN_RESOLUTION  # noqa: F401 - every family here downsamples by 32
from scaleprof.errors import BadInput
from scaleprof.models.meta import SkipInitOnMeta

if TYPE_CHECKING:       # importing a family does not import torch
    import torch


def round8(value: float, minimum: int = 8) -> int:
    """Nearest multiple of 8, at least ``minimum``."""
    return max(minimum, int(round(value / 8.0)) * 8)


class Family(ABC):
    name: str = ""
    title: str = ""
    bases: tuple[str, ...] = ()          # timm registry names of the base models
    has_groups = False                   # grouped convs whose group width scales with width
    depth_key = "depths"                 # arch entry: blocks per stage
    width_key: str | None = None         # arch entry: main channel width per stage, when stored
    group_width_key: str | None = None   # arch entry: group width per stage, when stored
    # Module names of blocks: group 1 numbers the stage, group 2 the block within it, counting
    # from first_stage and first_block (timm's ResNet: "layer1.0.conv1" is stage 0, block 0).
    block_pattern: re.Pattern
    first_stage = 0
    first_block = 0
    task = "classification"              # or "detection": the report compares the two
    resolution_multiple: int | None = None   # inputs must be multiples of this (None: any; searched in 8s)

    # -- what each family writes -------------------------------------------------------------------
    @abstractmethod
    def base_arch(self, model: str) -> dict:
        """The knobs of a timm base model, as JSON-able data."""

    @abstractmethod
    def build(self, arch: dict, device="cpu", dtype=None) -> torch.nn.Module:
        """The network of these knobs (random weights)."""

    @abstractmethod
    def with_knobs(self, base: dict, depths: list[int], width: float, group: float = 1.0) -> dict:
        """The base arch with these stage depths, width multiplier and group-width multiplier."""

    # -- shared ----------------------------------------------------------------------------------
    def default_resolution(self, model: str) -> int:
        import timm

        cfg = timm.models.get_pretrained_cfg(model)
        size = getattr(cfg, "input_size", None) if cfg is not None else None
        return int(size[-1]) if size else 224

    def output_names(self, arch: dict) -> list[str]:
        """Names of the network's outputs, in the order its forward returns them."""
        return ["logits"]

    def check_resolution(self, model: str, resolution: int) -> None:
        """BadInput when ``model``'s networks cannot take ``resolution``: with a resolution_multiple,
        only its multiples."""
        multiple = self.resolution_multiple
        if multiple and resolution % multiple:
            nearest = max(multiple, round(resolution / multiple) * multiple)
            raise BadInput(f"{model} takes resolutions that are multiples of {multiple} (its coarsest feature map "
                           f"is 1/{multiple} of the input), not {resolution}: try {nearest}")

    def compound(self, model: str, base_arch: dict, scale: float) -> tuple[dict, int] | None:
        """(arch, resolution) of the family's own compound rule for the ``en`` strategy, or None when
        the family has none (``en`` is then a direction of the flops search like any other)."""
        return None

    def build_on_meta(self, arch: dict, dtype=None) -> torch.nn.Module:
        """``build`` on the meta device, without initialising weights (for counting and reading shapes)."""
        with SkipInitOnMeta():
            return self.build(arch, device="meta", dtype=dtype)

    def depths(self, arch: dict) -> list[int]:
        return list(arch[self.depth_key])

    def with_depths(self, arch: dict, depths: list[int]) -> dict:
        return dict(arch, **{self.depth_key: [int(d) for d in depths]})

    def widths(self, arch: dict) -> list[int]:
        """Main channel width of each stage (what width scaling multiplies)."""
        if self.width_key is None:
            raise NotImplementedError(f"{type(self).__name__} derives its widths: it overrides widths()")
        return list(arch[self.width_key])

    def group_widths(self, arch: dict) -> list[int] | None:
        return list(arch[self.group_width_key]) if self.group_width_key else None

    def width_signature(self, arch: dict) -> str:
        """A key that is equal for two archs (at equal depths) exactly when their widths are: lets
        the scaling search reuse one count for every continuous width that rounds the same."""
        return json.dumps(arch, sort_keys=True)

    def block_of(self, name: str) -> tuple[int, int] | None:
        """(stage index from 0, block index from 0) of a qualified module name, or None (stem/head)."""
        m = self.block_pattern.match(name)
        if not m:
            return None
        return int(m.group(1)) - self.first_stage, int(m.group(2)) - self.first_block
