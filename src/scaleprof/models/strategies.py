"""Scaling strategies: how a flops factor s splits into depth, width, group width and resolution.

Dollar, Singh & Girshick, "Fast and Accurate Model Scaling" (CVPR 2021), docs/conventions.md#strategies: a strategy
gives exponents with d = s^e_d, w = s^e_w, r = s^e_r and e_d + 2 e_w + 2 e_r = 1, so flops
(~ d w^2 r^2) grow by s before rounding.

- Named: d, w, r, dw, dr, wr, dwr (equal weights on the named letters, as pycls reads them) and
  dWr(alpha): e_d = (1-alpha)/2, e_w = alpha/2, e_r = (1-alpha)/4 (alpha = 0.8 by default).
- pycls weighted specs such as ``d1_w8_g8_r1``: with S = W_d + W_w + W_r, e_d = W_d/S,
  e_w = W_w/(2S), e_r = W_r/(2S), e_g = W_g/(2S) (pycls ``scaling_factors``).
- ``en``: EfficientNet's compound rule d = 1.2^phi, w = 1.1^phi, r = 1.15^phi with s = 2^phi.
  1.2 * 1.1^2 * 1.15^2 = 1.92, not 2, so scaleprof keeps the rule's proportions and normalises
  the exponents so that flops grow by exactly s (the flops search corrects the rest anyway).

Group width: in a grouped-conv family (RegNet) a 3x3 conv costs w * g per position, so scaling w
alone grows flops like w, not w^2. Named strategies therefore scale group width with width there
(the paper's "fast compound scaling" for RegNet is d1_w8_g8_r1); a pycls spec scales g only by its
own ``g`` weight, exactly as written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from scaleprof.errors import BadInput, nearest

NAMED = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr", "en")
DEFAULT_ALPHA = 0.8
# The largest flops factor: 2^8, past the largest members of every family here (EfficientNet-B7 is about
# 100x B0's flops); counting a network of s x 256 along depth alone already takes a minute.
MAX_SCALE = 256.0
_WEIGHTED = re.compile(r"^[dwgr](\d+(\.\d*)?|\.\d+)(_[dwgr](\d+(\.\d*)?|\.\d+))*$")


@dataclass(frozen=True)
class Strategy:
    name: str                 # canonical spelling ("dWr", "d1_w8_g8_r1", "en", ...)
    e_d: float
    e_w: float
    e_r: float
    e_g: float | None = None  # None: group width follows width in grouped families (named strategies)
    alpha: float | None = None

    def exponents(self, grouped: bool = False) -> dict[str, float]:
        """{'d', 'w', 'g', 'r'} exponents for a family with (grouped=True) or without grouped convs."""
        e_g = self.e_g if self.e_g is not None else (self.e_w if grouped else 0.0)
        return {"d": self.e_d, "w": self.e_w, "g": e_g if grouped else 0.0, "r": self.e_r}

    def multipliers(self, s: float, grouped: bool = False) -> dict[str, float]:
        return {k: s ** e for k, e in self.exponents(grouped).items()}

    @property
    def axes(self) -> str:
        """The axes this strategy scales, among 'd', 'w', 'r'."""
        return "".join(a for a, e in (("d", self.e_d), ("w", self.e_w), ("r", self.e_r)) if e > 0)

    @property
    def expected_growth(self) -> dict[str, float]:
        """Exponents of flops, params and acts in s before rounding (docs/conventions.md#growth-exponents):
        params ~ d w^2 (resolution-free), acts ~ d w r^2."""
        return {"flops": self.e_d + 2 * self.e_w + 2 * self.e_r,
                "params": self.e_d + 2 * self.e_w,
                "acts": self.e_d + self.e_w + 2 * self.e_r}


def check_scale(scale, what: str = "scale") -> float:
    """``scale`` as a float flops factor in (0, MAX_SCALE]; BadInput naming ``what`` otherwise."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise BadInput(f"{what} must be a positive number, got {scale!r}")
    if scale <= 0:
        raise BadInput(f"{what} must be > 0 (a flops factor; 1 is the base model), got {scale:g}")
    if scale > MAX_SCALE:
        raise BadInput(f"{what} {scale:g} is above {MAX_SCALE:g}, the largest flops factor scaleprof scales to "
                       "(past the largest networks of every family here; counting such a network takes minutes)")
    return float(scale)


def scale_of_phi(phi) -> float:
    """EfficientNet's compound coefficient phi as the flops factor s = 2^phi (checked as a scale)."""
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi):
        raise BadInput(f"phi must be a finite number, got {phi!r}")
    if phi > math.log2(MAX_SCALE):
        raise BadInput(f"phi {phi:g} is above {math.log2(MAX_SCALE):g}: s = 2^phi would pass {MAX_SCALE:g}, the "
                       "largest flops factor scaleprof scales to")
    return check_scale(2.0 ** phi, f"s = 2^phi (phi {phi:g})")


def _letters(name: str) -> Strategy:
    weights = {c: (1.0 if c in name else 0.0) for c in "dwr"}
    total = sum(weights.values())
    return Strategy(name, weights["d"] / total, weights["w"] / (2 * total), weights["r"] / (2 * total))


def parse_strategy(text: str | None, alpha: float | None = None) -> Strategy:
    """The Strategy a user wrote; BadInput (naming the valid choices) for anything else."""
    if text is None:
        raise BadInput("no strategy given; choose from: " + ", ".join(NAMED) + " or a pycls spec like d1_w8_g8_r1")
    text = str(text).strip()
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
                or not 0.0 < alpha <= 1.0:
            raise BadInput(f"alpha must be in (0, 1], got {alpha!r}")
        if text != "dWr":
            raise BadInput(f"alpha applies only to the dWr strategy, not {text!r}")
    if text == "dWr":
        a = float(DEFAULT_ALPHA if alpha is None else alpha)
        return Strategy("dWr", (1 - a) / 2, a / 2, (1 - a) / 4, alpha=a)
    if text == "en":
        d, w, r = (math.log(x) for x in (1.2, 1.1, 1.15))
        total = d + 2 * w + 2 * r
        return Strategy("en", d / total, w / total, r / total, e_g=0.0)
    if text in NAMED:
        return _letters(text)
    if _WEIGHTED.match(text):
        weights = {c: 0.0 for c in "dwgr"}
        for part in text.split("_"):
            if weights[part[0]] != 0.0:
                raise BadInput(f"strategy {text!r} gives {part[0]!r} twice")
            weights[part[0]] = float(part[1:])
        total = weights["d"] + weights["w"] + weights["r"]
        if total <= 0:
            raise BadInput(f"strategy {text!r} scales none of depth, width, resolution (weights are all 0)")
        canonical = "_".join(f"{c}{weights[c]:g}" for c in "dwgr" if weights[c] or c in text)
        return Strategy(canonical, weights["d"] / total, weights["w"] / (2 * total), weights["r"] / (2 * total),
                        e_g=weights["g"] / (2 * total))
    raise BadInput(f"unknown strategy {text!r}{nearest(text, NAMED)}; choose from: {', '.join(NAMED)}, "
                   "or a pycls weighted spec like d1_w8_g8_r1")


def describe() -> list[tuple[str, str]]:
    """(name, description) of every named strategy, for `scaleprof models`."""
    out = []
    for name in NAMED:
        s = parse_strategy(name)
        e = f"d=s^{s.e_d:.3g} w=s^{s.e_w:.3g} r=s^{s.e_r:.3g}"
        what = {"dWr": f"fast compound scaling, alpha={DEFAULT_ALPHA} by default (--alpha)",
                "en": "EfficientNet compound rule d=1.2^phi w=1.1^phi r=1.15^phi, s=2^phi (EfficientDet: the "
                      "paper's D0-D7 rule, integer phi)",
                "dwr": "uniform compound scaling"}.get(name, f"scale {'/'.join(name)}")
        out.append((name, f"{what}; {e}"))
    out.append(("d<a>_w<b>_g<c>_r<e>", "pycls weighted spec, e.g. d1_w8_g8_r1 (= dWr(0.8) with group width)"))
    return out
