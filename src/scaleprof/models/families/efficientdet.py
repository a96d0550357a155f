"""EfficientDet (Tan, Pang and Le, CVPR 2020) through effdet's ``EfficientDet``: an EfficientNet
backbone, a BiFPN (weighted bi-directional feature pyramid, levels P3-P7) and class/box heads shared
across the levels. tf_*: the TensorFlow ports (TF "same" padding, redundant conv biases).

The arch keeps effdet's architecture knobs (its config, as JSON) and the backbone as an
EfficientNet arch of scaleprof's efficientnet family; ``build`` constructs effdet's own model with
that backbone. What scaling changes acts on the whole detector:

- depths: the backbone's 7 stages, then the BiFPN's layers (``fpn_cell_repeats``), then the
  class/box nets' layers (``box_class_repeats``); every stage after the first BiFPN layer / head
  layer repeats the same modules, as backbone blocks do;
- width: the backbone's channel multiplier and the BiFPN/head width (``fpn_channels``, multiple of 8);
- resolution: multiples of 128. Five pyramid levels halve the input seven times in all (P7 is
  1/128 of it), and the upsampling path doubles each level back: any other size leaves two
  feature maps of a fusion node off by one pixel.

The built network returns effdet's raw outputs flat: class P3..P7, then box P3..P7 (no anchor
decoding, no NMS), and upsamples by a factor of 2 rather than to a fixed size, so one network takes
every multiple of 128 (effdet's ``_USE_SCALE``; with it the size a network is built for only sets its
max-pool kernels, the same for all multiples of 128).

``en`` is the paper's compound rule (``compound``); the other strategies go through the flops search.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import json
import math
import re
import warnings

from scaleprof.errors import BadInput
from scaleprof.models.families.base import Family, round8
from scaleprof.models.families.efficientnet import EfficientNetFamily
from scaleprof.models.families.registry import FAMILIES, register_family

PYRAMID_STRIDE = 128        # P3..P7: the coarsest level is 1/2^7 of the input
BUILD_SIZE = 512            # the size effdet builds for (any multiple of PYRAMID_STRIDE gives the same network)
# EfficientDet paper, Table 1: (backbone B-index, BiFPN width, BiFPN layers, head layers, resolution)
# for phi = 0..7. The paper's rule is width 64 * 1.35^phi, BiFPN depth 3 + phi, head depth
# 3 + floor(phi / 3), resolution 512 + 128 phi, backbone B(phi); its table rounds the widths by hand
# (116.6 -> 112, 212.6 -> 224) and departs from the rule for the largest models: D5 keeps 7 BiFPN
# layers at 1280 px, D6 and D7 keep 8 layers and the B6 backbone, D7 takes 1536 px.
COMPOUND_TABLE = ((0, 64, 3, 3, 512), (1, 88, 4, 3, 640), (2, 112, 5, 3, 768), (3, 160, 6, 4, 896),
                  (4, 224, 7, 4, 1024), (5, 288, 7, 4, 1280), (6, 384, 8, 5, 1280), (6, 384, 8, 5, 1536))
SUM_FUSION_FROM = 6         # D6 and D7 fuse by a plain sum (effdet, the official configs: training stability)
# effdet config keys that describe the network; the rest are training, anchors and NMS settings
# (image_size is left out on purpose: see BUILD_SIZE; backbone_args only set drop-path, a training knob).
ARCH_KEYS = ("backbone_name", "num_classes", "min_level", "max_level", "num_scales", "aspect_ratios",
             "pad_type", "act_type", "norm_kwargs", "box_class_repeats", "fpn_cell_repeats", "fpn_channels",
             "separable_conv", "apply_resample_bn", "conv_bn_relu_pattern", "downsample_type", "upsample_type",
             "redundant_bias", "head_bn_level_first", "head_act_type", "fpn_name")
_BACKBONE: EfficientNetFamily = FAMILIES[EfficientNetFamily.name]     # the backbone's knobs: an EfficientNet arch
_NAME = re.compile(r"^(tf_)?efficientdet_d(\d)$")


def phi_of(model: str) -> int:
    return int(_NAME.match(model).group(2))


@functools.lru_cache(maxsize=None)
def _effdet():
    """effdet's modules (efficientdet, config), imported once without the FutureWarning its loss module's
    ``torch.jit.script`` prints (a one-line error must stay one line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return importlib.import_module("effdet.efficientdet"), importlib.import_module("effdet.config")


@functools.lru_cache(maxsize=None)
def _flat_output_class():
    EfficientDet = _effdet()[0].EfficientDet

    class EfficientDetOutputs(EfficientDet):
        """effdet's EfficientDet, returning its raw outputs as one flat tuple (class P3..P7, box P3..P7)."""

        def forward(self, x):
            classes, boxes = super().forward(x)
            return (*classes, *boxes)

    return EfficientDetOutputs


@contextlib.contextmanager
def _patched(module, **values):
    """Module-level names of ``module`` set to ``values`` for the duration, then restored."""
    saved = {name: getattr(module, name) for name in values}
    try:
        for name, value in values.items():
            setattr(module, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


@register_family
class EfficientDetFamily(Family):
    name = "efficientdet"
    title = ("EfficientDet (Tan, Pang & Le 2020), effdet's EfficientDet: EfficientNet + BiFPN + class/box heads; "
             "tf_*: TensorFlow 'same' padding; resolutions multiples of 128")
    bases = tuple(f"efficientdet_d{i}" for i in range(6)) + tuple(f"tf_efficientdet_d{i}" for i in range(8))
    task = "detection"
    resolution_multiple = PYRAMID_STRIDE
    backbone_stages = 7

    def default_resolution(self, model):
        return COMPOUND_TABLE[phi_of(model)][4]

    def output_names(self, arch):
        levels = range(arch["config"]["min_level"], arch["config"]["max_level"] + 1)
        return [f"{kind}_p{level}" for kind in ("class", "box") for level in levels]

    # -- knobs ------------------------------------------------------------------------------------
    def base_arch(self, model):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(_effdet()[1].get_efficientdet_config(model), resolve=True)
        config = {k: config[k] for k in ARCH_KEYS}
        config["aspect_ratios"] = [list(a) if isinstance(a, (list, tuple)) else a for a in config["aspect_ratios"]]
        return {"builder": "effdet.efficientdet.EfficientDet", "variant": model, "config": config,
                "backbone": _BACKBONE.base_arch(config["backbone_name"])}

    def build(self, arch, device="cpu", dtype=None):
        import torch

        efficientdet, effdet_config = _effdet()
        config = effdet_config.get_efficientdet_config(arch["variant"])
        effdet_config.set_config_writeable(config)
        config.update(arch["config"], image_size=[BUILD_SIZE, BUILD_SIZE], backbone_args={})

        def backbone(_name, features_only, out_indices, pretrained, **_training_args):
            knobs = dict(arch["backbone"], kwargs=dict(arch["backbone"]["kwargs"], features_only=features_only,
                                                       out_indices=tuple(out_indices)))
            return _BACKBONE.build(knobs, device=device, dtype=dtype)

        with _patched(efficientdet, create_model=backbone, _USE_SCALE=True), torch.device(device):
            model = _flat_output_class()(config, pretrained_backbone=False)
        return model if dtype is None else model.to(dtype)

    def depths(self, arch):
        config = arch["config"]
        return list(arch["backbone"]["depths"]) + [config["fpn_cell_repeats"], config["box_class_repeats"]]

    def with_depths(self, arch, depths):
        return self._with(arch, depths, arch["backbone"], arch["config"]["fpn_channels"])

    def widths(self, arch):
        return _BACKBONE.widths(arch["backbone"]) + [arch["config"]["fpn_channels"]]

    def with_knobs(self, base, depths, width, group=1.0):
        backbone = _BACKBONE.with_knobs(base["backbone"], depths[:self.backbone_stages], width)
        return self._with(base, depths, backbone, round8(base["config"]["fpn_channels"] * width))

    def _with(self, arch, depths, backbone, fpn_channels):
        out = copy.deepcopy(arch)
        out["backbone"] = _BACKBONE.with_depths(backbone, depths[:self.backbone_stages])
        fpn_layers, head_layers = (int(d) for d in depths[self.backbone_stages:])
        out["config"].update(fpn_cell_repeats=fpn_layers, box_class_repeats=head_layers, fpn_channels=int(fpn_channels))
        return out

    def width_signature(self, arch):
        rest = {k: v for k, v in arch.items() if k != "backbone"}
        return json.dumps([_BACKBONE.width_signature(arch["backbone"]), rest], sort_keys=True)

    # -- the paper's compound rule -----------------------------------------------------------------
    def compound(self, model, base_arch, scale):
        """(arch, resolution) of the base model scaled by the paper's rule to phi + log2(scale):
        the row of COMPOUND_TABLE, with the base's padding, classes and head layout."""
        step = math.log2(scale)
        target = phi_of(model) + step
        if abs(target - round(target)) > 1e-6 or not 0 <= round(target) < len(COMPOUND_TABLE):
            raise BadInput(f"EfficientDet's compound rule defines D0..D7 (integer phi 0..7): {model} with "
                           f"phi {step:+g} (s = {scale:g}) would be D{target:g}")
        phi = round(target)
        b, width, fpn_layers, head_layers, resolution = COMPOUND_TABLE[phi]
        arch = copy.deepcopy(base_arch)
        prefix = "tf_" if arch["config"]["backbone_name"].startswith("tf_") else ""
        arch["config"].update(backbone_name=f"{prefix}efficientnet_b{b}", fpn_channels=width,
                              fpn_cell_repeats=fpn_layers, box_class_repeats=head_layers)
        arch["config"]["fpn_name"] = "bifpn_sum" if phi >= SUM_FUSION_FROM else None   # None: effdet's weighted fusion
        arch["backbone"] = _BACKBONE.base_arch(arch["config"]["backbone_name"])
        return arch, resolution

    # -- decomposition ---------------------------------------------------------------------------
    _BACKBONE_BLOCK = re.compile(r"^backbone\.blocks\.(\d+)\.(\d+)(\.|$)")
    _FPN_LAYER = re.compile(r"^fpn\.cell\.(\d+)(\.|$)")
    _HEAD_LAYER = re.compile(r"^(?:class_net|box_net)\.(?:conv_rep|bn_rep)\.(\d+)(\.|$)")

    def block_of(self, name):
        if m := self._BACKBONE_BLOCK.match(name):
            return int(m.group(1)), int(m.group(2))
        if m := self._FPN_LAYER.match(name):
            return self.backbone_stages, int(m.group(1))
        if m := self._HEAD_LAYER.match(name):
            return self.backbone_stages + 1, int(m.group(1))
        return None
