"""Model families: build timm networks from JSON-able knobs, through timm's own builders.

Nothing here re-implements an architecture. Each family reads a base model's constructor arguments
from timm itself (scaleprof.models.recording records the call timm's entry point makes to its
builder), keeps them as JSON in ``ModelSpec.arch``, and rebuilds through the same builder with the
scaling knobs changed. One module per family, each registered with ``@register_family``:

    base            Family: the knobs every family has, and the accessors that read them
    registry        FAMILIES (name -> Family) and the @register_family decorator
    efficientnet    timm's _gen_efficientnet (per-stage depth multipliers, channel multiplier)
    efficientnetv2  timm's _gen_efficientnetv2_* (the same knobs)
    regnet          timm's RegNet + RegNetCfg, per-stage depth, width and group width
    resnet          timm's ResNet(block, layers, channels, stem_width)
    tresnet         timm's TResNet(layers, width_factor)
    efficientdet    effdet's EfficientDet: EfficientNet backbone + BiFPN + class/box heads (detection)

A new family is one more module with a registered Family subclass, imported below (the import
order is the order ``scaleprof models`` lists the families in).
"""

from scaleprof.models.families import (efficientnet, efficientnetv2, regnet, tresnet, resnet,  # noqa: F401 (registers)
                                      efficientdet)
from scaleprof.models.families.base import MIN_RESOLUTION, Family, round8
from scaleprof.models.families.registry import FAMILIES, register_family

__all__ = ["FAMILIES", "MIN_RESOLUTION", "Family", "register_family", "round8"]
