"""EfficientNetV2 through timm's ``_gen_efficientnetv2_*`` builders: the EfficientNet family's knobs
and rebuild (the same arch_def decoding), other base models and no paper resolutions."""

from __future__ import annotations

from scaleprof.models.families.efficientnet import EfficientNetFamily
from scaleprof.models.families.registry import register_family


@register_family
class EfficientNetV2Family(EfficientNetFamily):
    name = "efficientnetv2"
    title = "EfficientNetV2 (Tan & Le 2021), timm _gen_efficientnetv2_*; tf_*: TensorFlow 'same' padding"
    bases = ("efficientnetv2_s", "efficientnetv2_m", "efficientnetv2_l", "efficientnetv2_xl",
             "efficientnetv2_rw_t", "efficientnetv2_rw_s", "efficientnetv2_rw_m",
             "tf_efficientnetv2_s", "tf_efficientnetv2_m", "tf_efficientnetv2_l", "tf_efficientnetv2_xl")
    paper_resolution: dict = {}
