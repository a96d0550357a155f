"""ResNet through timm's ``ResNet(block, layers, channels, stem_width, ...)``: the arguments timm's
``_create_resnet`` receives for a base model, with layers (depths), channels and stem width scaled."""

from __future__ import annotations

import inspect
import re

from scaleprof.models.families.base import Family, round8
from scaleprof.models.families.registry import register_family
from scaleprof.models.recording import NOT_ARCH, builder_arguments, is_jsonable


@register_family
class ResNetFamily(Family):
    name = "resnet"
    title = "ResNet (He et al. 2016), timm ResNet(block, layers, channels)"
    bases = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50d")
    block_pattern = re.compile(r"^layer(\d+)\.(\d+)(\.|$)")
    first_stage = 1
    depth_key = "layers"
    width_key = "channels"

    def base_arch(self, model):
        from timm.models import resnet

        arguments = builder_arguments(resnet, "_create_resnet", model)
        block = arguments.pop("block")
        layers = [int(x) for x in arguments.pop("layers")]
        sig = inspect.signature(resnet.ResNet.__init__).parameters
        arguments = {k: v for k, v in arguments.items() if k in sig and k not in NOT_ARCH}
        odd = {k: v for k, v in arguments.items() if not is_jsonable(v)}
        if odd:
            raise ValueError(f"{model}: constructor arguments scaleprof cannot store: {sorted(odd)}")
        channels = [int(c) for c in arguments.pop("channels", sig["channels"].default)]
        stem_width = int(arguments.pop("stem_width", sig["stem_width"].default))
        return {
            "builder": "timm.models.resnet.ResNet",
            "variant": model,
            "block": block.__name__,
            "layers": layers,
            "channels": channels,
            "stem_width": stem_width,
            "kwargs": arguments,
        }

    def build(self, arch, device="cpu", dtype=None):
        from timm.models import resnet

        block = getattr(resnet, arch["block"])
        return resnet.ResNet(block=block, layers=tuple(arch["layers"]), channels=tuple(arch["channels"]),
                             stem_width=arch["stem_width"], device=device, dtype=dtype, **arch["kwargs"])

    def with_knobs(self, base, depths, width, group=1.0):
        arch = self.with_depths(base, depths)
        arch.update(channels=[round8(c * width) for c in base["channels"]],
                    stem_width=round8(base["stem_width"] * width))
        return arch
