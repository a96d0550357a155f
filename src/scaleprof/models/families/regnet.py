"""RegNet X/Y through timm's ``RegNet`` and its ``RegNetCfg`` (the pycls generator parameters w0, wa,
wm, depth, group size). Scaled models override the per-stage depth, width and group width that timm
derives from the generator (pycls' scaler converts a RegNet to per-stage AnyNet parameters the same way).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, fields

from scaleprof.models.families.base import Family, round8
from scaleprof.models.families.registry import register_family
from scaleprof.models.recording import is_jsonable


@functools.lru_cache(maxsize=None)
def _staged_regnet_class():
    """timm's RegNet with explicit per-stage depths, widths and group widths (defined on first use:
    it needs timm)."""
    from timm.layers import calculate_drop_path_rates
    from timm.models.regnet import RegNet

    class StagedRegNet(RegNet):
        """The generator (w0, wa, wm, depth, group size) still defines the base network; a scaled
        network keeps everything timm derives from it (strides, block type, SE, head) and only
        replaces the three per-stage quantities that scaling changes."""

        def __init__(self, cfg, stages=None, **kwargs):
            object.__setattr__(self, "_scaleprof_stages", stages)
            super().__init__(cfg, **kwargs)

        def _get_stage_args(self, cfg, default_stride=2, output_stride=32, drop_path_rate=0.0):
            per_stage, common = super()._get_stage_args(cfg, default_stride, output_stride, drop_path_rate)
            stages = getattr(self, "_scaleprof_stages", None)
            if stages:
                dpr = calculate_drop_path_rates(drop_path_rate, list(stages["depths"]), stagewise=True)
                for i, args in enumerate(per_stage):
                    args.update(depth=int(stages["depths"][i]), out_chs=int(stages["widths"][i]),
                                group_size=int(stages["group_widths"][i]), drop_path_rates=dpr[i])
            return per_stage, common

    return StagedRegNet


@register_family
class RegNetFamily(Family):
    name = "regnet"
    title = "RegNet X/Y (Radosavovic et al. 2020), timm RegNet + RegNetCfg (pycls generator)"
    bases = tuple(f"regnet{k}_{m}" for k in "xy" for m in
                  ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320"))
    block_pattern = re.compile(r"^s(\d+)\.b(\d+)(\.|$)")
    first_stage = first_block = 1
    has_groups = True
    width_key = "widths"
    group_width_key = "group_widths"

    def base_arch(self, model):
        from timm.models import regnet

        cfg = regnet.model_cfgs[model]
        per_stage, _ = regnet.RegNet._get_stage_args(None, cfg)
        return {
            "builder": "timm.models.regnet.RegNet",
            "variant": model,
            "cfg": {k: v for k, v in asdict(cfg).items() if is_jsonable(v)},
            "depths": [int(a["depth"]) for a in per_stage],
            "widths": [int(a["out_chs"]) for a in per_stage],
            "group_widths": [int(a["group_size"]) for a in per_stage],
            "bottle_ratios": [float(a["bottle_ratio"]) for a in per_stage],
        }

    def build(self, arch, device="cpu", dtype=None):
        from timm.models.regnet import RegNetCfg

        known = {f.name for f in fields(RegNetCfg)}
        cfg = RegNetCfg(**{k: v for k, v in arch["cfg"].items() if k in known})
        stages = {k: arch[k] for k in ("depths", "widths", "group_widths")}
        return _staged_regnet_class()(cfg, stages=stages, device=device, dtype=dtype)

    def with_knobs(self, base, depths, width, group=1.0):
        # pycls rounding: widths to multiples of 8, group widths to multiples of 8 (1, 2 or 4 when
        # tiny), group width at most the (bottleneck) width, then widths made divisible by it.
        widths, gws = [], []
        for w0, g0, b in zip(base["widths"], base["group_widths"], base["bottle_ratios"]):
            w = round8(w0 * width)
            g = g0 * group
            g = max(1, round(g)) if g <= 2 else (4 if g <= 5 else round8(g))
            wb = int(w * b)
            g = min(g, wb)
            wb = max(g, int(round(wb / g)) * g)
            widths.append(int(wb / b))
            gws.append(int(g))
        arch = self.with_depths(base, depths)
        arch.update(widths=widths, group_widths=gws)
        return arch
