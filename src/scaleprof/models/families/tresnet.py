"""TResNet through timm's ``TResNet(layers, width_factor)``: the arguments timm's ``_create_tresnet``
receives for a base model, with layers (depths) and width factor scaled."""

from __future__ import annotations

import inspect
import re

from scaleprof.models.families.base import Family
from scaleprof.models.families.registry import register_family
from scaleprof.models.recording import NOT_ARCH, builder_arguments, is_jsonable


@register_family
class TResNetFamily(Family):
    name = "tresnet"
    title = "TResNet (Ridnik et al. 2021), timm TResNet(layers, width_factor)"
    bases = ("tresnet_m", "tresnet_l", "tresnet_xl")
    block_pattern = re.compile(r"^body\.layer(\d+)\.(\d+)(\.|$)")
    first_stage = 1
    depth_key = "layers"

    def base_arch(self, model):
        from timm.models import tresnet

        allowed = inspect.signature(tresnet.TResNet.__init__).parameters
        arguments = {k: v for k, v in builder_arguments(tresnet, "_create_tresnet", model).items()
                     if k in allowed and k not in NOT_ARCH}
        return {
            "builder": "timm.models.tresnet.TResNet",
            "variant": model,
            "layers": [int(x) for x in arguments.pop("layers")],
            "width_factor": float(arguments.pop("width_factor", 1.0)),
            "kwargs": {k: v for k, v in arguments.items() if is_jsonable(v)},
        }

    def build(self, arch, device="cpu", dtype=None):
        from timm.models.tresnet import TResNet

        return TResNet(layers=list(arch["layers"]), width_factor=arch["width_factor"], device=device,
                       dtype=dtype, **arch["kwargs"])

    def widths(self, arch):
        planes = int(64 * arch["width_factor"])
        if arch["kwargs"].get("v2"):
            planes = planes // 8 * 8
        return [planes, planes * 2, planes * 4, planes * 8]

    def with_knobs(self, base, depths, width, group=1.0):
        # TResNet stage widths are int(64*wf) * (1, 2, 4, 8): multiples of 8 iff 64*wf is.
        wf = max(1, round(base["width_factor"] * width * 8)) / 8.0 if abs(width - 1.0) > 1e-12 \
            else base["width_factor"]
        arch = self.with_depths(base, depths)
        arch.update(width_factor=wf)
        return arch
