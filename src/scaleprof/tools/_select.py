"""Shared by `scaleprof scale` and `scaleprof count`: choosing a base or scaled model from flags."""

from __future__ import annotations

import math


def add_model_arguments(parser, scale_required: bool = False) -> None:
    parser.add_argument("model", metavar="MODEL", help="base model, a timm name (see `scaleprof models`)")
    parser.add_argument("--strategy", required=scale_required,
                        help="scaling strategy: d, w, r, dw, dr, wr, dwr, dWr, en, or a pycls spec like d1_w8_g8_r1")
    parser.add_argument("--alpha", type=float, help="dWr's alpha in (0, 1] (default 0.8)")
    parser.add_argument("--scale", type=float, metavar="F", help="flops factor s (1 = the base model)")
    parser.add_argument("--phi", type=float, help="for --strategy en: EfficientNet's phi (s = 2^phi) instead of --scale")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def selected_spec(args):
    """(spec, base_spec) from MODEL/--strategy/--alpha/--scale/--phi; BadInput for inconsistent flags."""
    from scaleprof.errors import BadInput
    from scaleprof.models import base_spec, parse_strategy, scale_spec

    base = base_spec(args.model)
    scale = args.scale
    if args.phi is not None:
        if args.strategy != "en":
            raise BadInput("--phi applies only to --strategy en (use --scale for other strategies)")
        if scale is not None:
            raise BadInput("give either --scale or --phi, not both")
        if not math.isfinite(args.phi):
            raise BadInput(f"phi must be a finite number, got {args.phi}")
        scale = 2.0 ** args.phi
    if args.strategy is None:
        if scale is not None or args.alpha is not None:
            raise BadInput("--scale/--alpha need a --strategy (e.g. --strategy dWr --scale 4)")
        return base, base
    parse_strategy(args.strategy, args.alpha)  # unknown strategy / bad alpha first
    if scale is None:
        raise BadInput(f"--strategy {args.strategy} needs --scale F (a flops factor > 0)")
    return scale_spec(base.model, args.strategy, scale, args.alpha), base


def fmt_int(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3f}{unit}"
    return str(n)
