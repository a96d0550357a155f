"""`scaleprof scale MODEL --strategy S [--alpha A] --scale F`: the concrete scaled network."""

from __future__ import annotations

import json

from scaleprof.tools.args import (add_model_arguments, add_output_arguments, fmt_int, say, selected_spec,
                                  spec_fields, still_working)

NAME = "scale"
HELP = "scale a base model by a strategy to s x its flops and show the concrete network"


def add_arguments(parser) -> None:
    add_model_arguments(parser, scale_required=True)
    add_output_arguments(parser)


def describe(spec, base) -> dict:
    """The JSON object `scale` prints."""
    from scaleprof.complexity import CONVENTION, count_spec
    from scaleprof.models.zoo import get_family

    family = get_family(spec.family)
    counts, base_counts = count_spec(spec), count_spec(base)
    flops, params, acts = counts.flops, counts.params, counts.acts
    return {
        **spec_fields(spec), "resolution": spec.resolution, "batch": 1,
        "flops": flops, "params": params, "acts": acts,
        "flops_ratio": flops / base_counts.flops,
        "base": {"resolution": base.resolution, "flops": base_counts.flops, "params": base_counts.params,
                 "acts": base_counts.acts},
        "depths": family.depths(spec.arch), "widths": family.widths(spec.arch),
        "group_widths": family.group_widths(spec.arch),
        "base_depths": family.depths(base.arch), "base_widths": family.widths(base.arch),
        "base_group_widths": family.group_widths(base.arch),
        "label": spec.label, "key": spec.key, "spec": spec.to_dict(), "convention": CONVENTION,
    }


def run(args) -> int:
    spec, base = selected_spec(args)
    with still_working(f"counting {spec.label}", say(args)):       # a huge network takes minutes
        info = describe(spec, base)
    if args.json:
        print(json.dumps(info))
        return 0
    alpha = f" alpha={spec.alpha:g}" if spec.alpha is not None else ""
    print(f"{spec.label}   ({spec.family}; strategy {spec.strategy}{alpha}, target s={spec.scale:g})")
    print(f"  multipliers   depth x{spec.depth_multiplier:.3f}  width x{spec.width_multiplier:.3f}  "
          f"group width x{spec.group_multiplier:.3f}  resolution {base.resolution} -> {spec.resolution}")
    print(f"  stage depths  {info['base_depths']} -> {info['depths']}")
    print(f"  stage widths  {info['base_widths']} -> {info['widths']}")
    if info["group_widths"]:
        print(f"  group widths  {info['base_group_widths']} -> {info['group_widths']}")
    b = info["base"]
    print(f"  flops   {fmt_int(b['flops']):>10} -> {fmt_int(info['flops']):>10}   "
          f"x{info['flops_ratio']:.3f} (target x{spec.scale:g}, {100 * (info['flops_ratio'] / spec.scale - 1):+.1f}%)")
    print(f"  params  {fmt_int(b['params']):>10} -> {fmt_int(info['params']):>10}   x{info['params'] / b['params']:.3f}")
    print(f"  acts    {fmt_int(b['acts']):>10} -> {fmt_int(info['acts']):>10}   x{info['acts'] / b['acts']:.3f}")
    print("  (per image; flops = multiply-adds, pycls conventions)")
    return 0
