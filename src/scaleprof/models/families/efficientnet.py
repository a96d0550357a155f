"""EfficientNet through timm's ``_gen_efficientnet`` builder (and the tf_* TensorFlow ports).

The builder takes ``channel_multiplier`` and a ``depth_multiplier`` that ``decode_arch_def``
accepts per stage of the arch_def: with the ``ceil`` truncation timm uses, a multiplier of
(n - 0.5) / repeats gives exactly n blocks, so any per-stage depth can be rebuilt.
"""

from __future__ import annotations

import functools
import json
import re

from scaleprof.models.families.base import Family
from scaleprof.models.families.registry import register_family
from scaleprof.models.meta import SkipInitOnMeta, create_on_meta
from scaleprof.models.recording import NOT_ARCH, is_jsonable, recording


def _generator(builder: str):
    """timm's ``_gen_*`` function that ``builder`` ("timm.models.efficientnet._gen_...") names."""
    from timm.models import efficientnet as effnet

    return getattr(effnet, builder.rsplit(".", 1)[-1])


@register_family
class EfficientNetFamily(Family):
    name = "efficientnet"
    title = "EfficientNet (Tan & Le 2019), timm _gen_efficientnet; tf_*: TensorFlow 'same' padding"
    # tf_*: timm's ports of the TensorFlow models, the same networks with TF "same" padding (timm's
    # Conv2dSame/MaxPool2dSame compute their pads from the input size; the export fixes them) and
    # TF's BatchNorm epsilon. They scale like the others: pad_type and bn_eps are builder kwargs.
    bases = tuple(f"efficientnet_b{i}" for i in range(8)) + tuple(f"tf_efficientnet_b{i}" for i in range(8))
    block_pattern = re.compile(r"^blocks\.(\d+)\.(\d+)(\.|$)")
    # EfficientNet paper resolutions (docs/conventions.md#compound-scaling, timm's _gen_efficientnet
    # docstring); timm's own trained weights use other sizes, but the named B-models are defined at these.
    paper_resolution = {f"{prefix}efficientnet_b{i}": r for prefix in ("", "tf_")
                        for i, r in enumerate((224, 240, 260, 300, 380, 456, 528, 600))}

    def default_resolution(self, model):
        return self.paper_resolution.get(model) or super().default_resolution(model)

    def base_arch(self, model):
        gen, arguments, raw, depths = self._generator_call(model)
        arguments.pop("pretrained", None)
        variant = arguments.pop("variant")
        channel_multiplier = float(arguments.pop("channel_multiplier", 1.0))
        arguments.pop("depth_multiplier", None)
        arguments = {k: v for k, v in arguments.items() if is_jsonable(v) and k not in NOT_ARCH}
        return {
            "builder": f"timm.models.efficientnet.{gen}",
            "variant": variant,
            "kwargs": arguments,
            "channel_multiplier": channel_multiplier,
            "raw_repeats": raw,      # repeats per stage in timm's arch_def
            "depths": depths,        # blocks per stage of this network
        }

    @staticmethod
    def _generator_call(model: str) -> tuple[str, dict, list[int], list[int]]:
        """(``_gen_*`` name, its arguments, repeats per stage in the arch_def, blocks per stage) of
        timm's ``model``: the generator call and timm's decoding of its arch_def, recorded."""
        from timm.models import _efficientnet_builder as builder
        from timm.models import efficientnet as effnet

        calls: list = []
        decoded: list = []
        original_decode = effnet.decode_arch_def

        def decode_recorder(arch_def, *args, **kwargs):
            out = original_decode(arch_def, *args, **kwargs)
            raw = [sum(builder._decode_block_str(s)[1] for s in stage) for stage in arch_def]
            decoded.append((raw, [len(stage) for stage in out]))
            return out

        with recording(effnet, [n for n in dir(effnet) if n.startswith("_gen_")], calls):
            effnet.decode_arch_def = decode_recorder
            try:
                create_on_meta(model)
            finally:
                effnet.decode_arch_def = original_decode
        (gen, arguments), (raw, depths) = calls[0], decoded[0]
        return gen, arguments, raw, depths

    def build(self, arch, device="cpu", dtype=None):
        # ceil((n - 0.5) / r * r) == n: the per-stage multiplier that gives exactly n blocks.
        multipliers = tuple((n - 0.5) / r for n, r in zip(arch["depths"], arch["raw_repeats"]))
        return _generator(arch["builder"])(arch["variant"], channel_multiplier=arch["channel_multiplier"],
                                           depth_multiplier=multipliers, pretrained=False, device=device,
                                           dtype=dtype, **arch["kwargs"])

    def width_signature(self, arch):
        # Every channel count of the network is round_chs_fn(c) for a c of the arch_def (or derived
        # from one), so the rounded values of those c determine all widths.
        from timm.models._efficientnet_builder import round_channels

        rounded = [round_channels(c, arch["channel_multiplier"], divisor, cmin, limit)
                   for c, divisor, cmin, limit in self._round_calls(arch["builder"], arch["variant"],
                                                                     json.dumps(arch["kwargs"], sort_keys=True))]
        rest = {k: v for k, v in arch.items() if k != "channel_multiplier"}
        return json.dumps([rounded, rest], sort_keys=True)

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _round_calls(builder, variant, kwargs_json):
        from timm.models import efficientnet as effnet

        calls: list = []
        with recording(effnet, ["round_channels"], calls), SkipInitOnMeta():
            _generator(builder)(variant, pretrained=False, device="meta", **json.loads(kwargs_json))
        seen = []
        for _, a in calls:
            item = (a["channels"], a["divisor"], a["channel_min"], a["round_limit"])
            if item not in seen:
                seen.append(item)
        return tuple(seen)

    def widths(self, arch):
        # widths do not depend on depths: read them from a one-block-per-stage build
        return list(self._widths_without_depths(json.dumps({k: v for k, v in arch.items() if k != "depths"},
                                                           sort_keys=True)))

    @functools.lru_cache(maxsize=4096)
    def _widths_without_depths(self, arch_json):
        import torch

        arch = json.loads(arch_json)
        model = self.build_on_meta(dict(arch, depths=[1] * len(arch["raw_repeats"])))
        # Output width of each stage: the last conv registered in its last block (conv_pw of a
        # depthwise-separable block, conv_pwl of inverted-residual and edge-residual blocks).
        widths = []
        for stage in model.blocks:
            convs = [m for m in stage[-1].modules() if isinstance(m, torch.nn.Conv2d)]
            widths.append(int(convs[-1].out_channels))
        return tuple(widths)

    def with_knobs(self, base, depths, width, group=1.0):
        arch = self.with_depths(base, depths)
        arch["channel_multiplier"] = float(base["channel_multiplier"]) * float(width)
        return arch
