"""The scaling search: from (base model, strategy, s) to a concrete network with s x the base flops.

pycls rounds the strategy's multipliers (channels to multiples of 8, integer depths, resolution to
multiples of 4) and never re-checks; the result can miss the target by 20%. scaleprof instead:

1. searches the continuous factor s' along the strategy's own direction (d = s'^e_d, w = s'^e_w,
   g = s'^e_g, r = s'^e_r, rounded) until the *rounded* network's flops are closest to s x base;
2. if that is still more than REFINE_ABOVE away, re-searches the width multiplier alone and then
   makes local moves on the axes the strategy scales (one stage's depth +-1, resolution +-8, or
   +- the family's resolution multiple: 128 for EfficientDet);
3. only if the target is still missed by more than TOLERANCE (coarse families: TResNet's width
   comes in steps of 1/8 of its base width), it allows the same local moves on the other axes.

Counting inside the search is exact and cheap: a family network is counted once per width
setting with two blocks per stage (on the meta device), and once per resolution at base width; the
flops/params/acts of any depth combination and resolution then follow by arithmetic, because
blocks after the first in a stage are identical and a layer's cost is its per-position cost times
its number of output positions (scaleprof.core.costs: the same rules and meta-device walk that
scaleprof.complexity counts with). Results are cached across searches.

A family with a compound rule of its own (EfficientDet's, Tan, Pang and Le 2020) answers ``en`` with
that rule (``Family.compound``) instead of the search.
"""

from __future__ import annotations

import functools
import math

from scaleprof.core.limits import MAX_RESOLUTION
from scaleprof.errors import BadInput
from scaleprof.models.families import MIN_RESOLUTION, Family
from scaleprof.models.zoo import base_spec, get_family
from scaleprof.models.spec import ModelSpec
from scaleprof.models.strategies import Strategy, check_scale, parse_strategy

TOLERANCE = 0.05        # the promise: achieved flops within 5% of s x base flops
GOOD_ENOUGH = 0.008     # stop searching once within 0.8%
REFINE_ABOVE = 0.015    # try local refinement when the direction search is further off than this


class Evaluator:
    """Exact flops/params/acts of (depths, width, group, resolution) settings of one base model."""

    def __init__(self, family: Family, base_arch: dict, base_resolution: int):
        self.family = family
        self.base_arch = base_arch
        self.base_resolution = base_resolution
        self.n_stages = len(family.depths(base_arch))
        self.probe_depths = [2] * self.n_stages
        self._costs: dict[str, dict] = {}
        self._positions: dict[int, dict] = {}
        self._values: dict[tuple, tuple[int, int, int]] = {}

    def arch(self, depths, w, g):
        return self.family.with_knobs(self.base_arch, list(depths), w, g)

    @staticmethod
    def _positions_of(row) -> int:
        """Output positions of a layer over all its calls: its acts over its output channels (a module
        called once per pyramid level, as a detector's class/box nets are, adds every call)."""
        shape = row.output_shape
        if not shape or not row.acts:
            return 0
        channels = shape[-1] if row.type == "Linear" else shape[1] if len(shape) > 1 else 1
        return row.acts // channels

    def costs_of(self, probe: dict) -> dict:
        """Per-layer (bucket, flops per position, acts per position, params) of an arch whose stages
        all have two blocks.

        Read from the modules of a meta build alone (no forward pass): a conv/linear layer's cost
        per output position depends only on its channels, and positions only on the resolution.
        """
        key = self.family.width_signature(probe)
        if key not in self._costs:
            from scaleprof.core.costs import direct_params, per_position_cost

            table, channels = {}, None
            for name, module in self.family.build_on_meta(probe).named_modules():
                f_pp, a_pp, out_channels = per_position_cost(module, channels)
                channels = out_channels or channels
                params = direct_params(module)
                if not (f_pp or a_pp or params):
                    continue
                where = self.family.block_of(name)
                bucket = "other" if where is None else (where[0], min(where[1], 1))
                table[name] = (bucket, f_pp, a_pp, params)
            self._costs[key] = table
        return self._costs[key]

    def positions(self, resolution: int) -> dict:
        """Output positions per layer at ``resolution`` (independent of widths and depths)."""
        if resolution not in self._positions:
            from scaleprof.core.costs import count_model

            counts = count_model(self.family.build_on_meta(self.arch(self.probe_depths, 1.0, 1.0)), resolution)
            self._positions[resolution] = {row.name: self._positions_of(row) for row in counts.layers}
        return self._positions[resolution]

    def value(self, depths, w, g, r) -> tuple[int, int, int]:
        return self.value_of(self.arch(depths, w, g), r)

    def value_of(self, arch: dict, r: int) -> tuple[int, int, int]:
        """(flops, params, acts) per image of any arch of this family (same stage structure)."""
        depths = self.family.depths(arch)
        probe = self.family.with_depths(arch, self.probe_depths)
        key = (tuple(depths), self.family.width_signature(probe), r)
        if key in self._values:
            return self._values[key]
        table, pos = self.costs_of(probe), self.positions(r)
        flops = params = acts = 0
        for name, (bucket, f_pp, a_pp, p) in table.items():
            if bucket == "other":
                mult = 1
            else:
                stage, block = bucket
                mult = 1 if block == 0 else depths[stage] - 1
            if not mult:
                continue
            n = pos.get(name, 0)
            flops += mult * f_pp * n
            acts += mult * a_pp * n
            params += mult * p
        self._values[key] = (flops, params, acts)
        return self._values[key]


@functools.lru_cache(maxsize=64)
def evaluator_for(model: str) -> Evaluator:
    spec = base_spec(model)
    return Evaluator(get_family(spec.family), spec.arch, spec.resolution)


class _Search:
    def __init__(self, ev: Evaluator, strategy: Strategy, s: float, target: float):
        self.ev, self.strategy, self.s, self.target = ev, strategy, s, target
        self.grouped = ev.family.has_groups
        self.base_depths = ev.family.depths(ev.base_arch)
        self.best = None   # (error, tiebreak, config)
        self.nominal = strategy.multipliers(s, self.grouped)

    def config_at(self, t: float) -> dict:
        m = self.strategy.multipliers(t, self.grouped)
        depths = [max(1, int(round(d0 * m["d"]))) for d0 in self.base_depths]
        r = self.rounded_resolution(self.ev.base_resolution * m["r"])
        return {"depths": depths, "w": m["w"], "g": m["g"], "r": r, "t": t}

    @property
    def resolution_step(self) -> int:
        return self.ev.family.resolution_multiple or 8

    def rounded_resolution(self, value: float) -> int:
        """``value`` rounded to the family's resolution step (8, EfficientDet 128), within the limits."""
        step = self.resolution_step
        highest = MAX_RESOLUTION // step * step
        return min(highest, max(MIN_RESOLUTION, step, int(round(value / step)) * step))

    def error(self, cfg) -> float:
        flops = self.ev.value(cfg["depths"], cfg["w"], cfg["g"], cfg["r"])[0]
        return math.log(flops / self.target)

    def consider(self, cfg) -> float:
        err = self.error(cfg)
        # tie-break: stay close to the strategy's nominal proportions
        drift = (abs(math.log(sum(cfg["depths"]) / sum(self.base_depths)) - math.log(self.nominal["d"]))
                 + abs(math.log(cfg["w"]) - math.log(self.nominal["w"]))
                 + abs(math.log(cfg["r"] / self.ev.base_resolution) - math.log(self.nominal["r"])))
        score = (round(abs(err), 4), drift)
        if self.best is None or score < self.best[0]:
            self.best = (score, err, dict(cfg, depths=list(cfg["depths"])))
        return err

    @property
    def best_error(self) -> float:
        return abs(self.best[1])

    def _secant(self, x: float, config_at, iterations: int, slope_range: tuple[float, float],
                default_slope: float, max_step: float) -> bool:
        """Secant steps on log x (clamped slope and step) until the rounded network config_at(x) is
        within GOOD_ENOUGH of the target; True when it got there."""
        points = []
        for _ in range(iterations):
            err = self.consider(config_at(x))
            points.append((math.log(x), err))
            if abs(err) < GOOD_ENOUGH:
                return True
            if len(points) >= 2 and points[-1][1] != points[-2][1] and points[-1][0] != points[-2][0]:
                slope = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
                slope = min(max(slope, slope_range[0]), slope_range[1])
            else:
                slope = default_slope
            step = -err / slope
            if len(points) >= 2 and abs(step) < 1e-4:
                step = -math.copysign(0.01, err)
            x = math.exp(math.log(x) + max(min(step, max_step), -max_step))
        return False

    def along_direction(self):
        """Secant search on log s' so that the rounded network hits the target."""
        if self._secant(self.s, self.config_at, 8, (0.3, 3.0), 1.0, 0.7):
            return
        # rounding makes flops a step function of t: try a few neighbours of the best t
        best_t = self.best[2]["t"]
        for f in (0.97, 0.985, 1.015, 1.03):
            self.consider(self.config_at(best_t * f))

    def along_width(self):
        """Secant search on log w alone (group width following it in grouped families)."""
        cfg = dict(self.best[2])

        def with_width(w):
            return dict(cfg, w=w, g=cfg["g"] * (w / cfg["w"]) if self.grouped else cfg["g"])

        self._secant(cfg["w"], with_width, 6, (0.5, 4.0), 2.0, 0.3)

    def local_moves(self, axes: str, max_steps: int = 40):
        for _ in range(max_steps):
            cfg = self.best[2]
            current = abs(self.best[1])
            if current < GOOD_ENOUGH:
                return
            moves = []
            if "d" in axes:
                for i in range(len(cfg["depths"])):
                    for delta in (-1, 1):
                        depths = list(cfg["depths"])
                        depths[i] += delta
                        if depths[i] >= 1:
                            moves.append(dict(cfg, depths=depths))
            if "r" in axes:
                step = self.resolution_step
                for delta in (-step, step):
                    if max(MIN_RESOLUTION, step) <= cfg["r"] + delta <= MAX_RESOLUTION:
                        moves.append(dict(cfg, r=cfg["r"] + delta))
            before = self.best
            for move in moves:
                self.consider(move)
            if self.best is before or abs(self.best[1]) >= current:
                return


def _geomean(values) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else 1.0


def scale_spec(model: str | ModelSpec, strategy: str | Strategy | None, scale: float,
               alpha: float | None = None) -> ModelSpec:
    """The network ``model`` scaled by ``strategy`` to ``scale`` x its flops, as a ModelSpec.

    ``model`` is a base model name (or its base spec). The result's ``flops_ratio`` is the achieved
    flops over the base flops (each at its own resolution); it lies within 5% of ``scale``.
    """
    base = base_spec(model if isinstance(model, str) else model.model)
    s = check_scale(scale)
    strat = strategy if isinstance(strategy, Strategy) else parse_strategy(strategy, alpha)
    family = get_family(base.family)
    native = family.compound(base.model, base.arch, s) if strat.name == "en" else None
    ev = evaluator_for(base.model)
    base_depths = family.depths(base.arch)
    base_flops = ev.value(base_depths, 1.0, 1.0, base.resolution)[0]
    arch, resolution = native or _searched(ev, strat, s, base, base_flops)
    flops = ev.value_of(arch, resolution)[0]
    groups0, groups = family.group_widths(base.arch), family.group_widths(arch)
    return ModelSpec(
        model=base.model, family=base.family, strategy=strat.name, alpha=strat.alpha, scale=s,
        depth_multiplier=sum(family.depths(arch)) / sum(base_depths),
        width_multiplier=_geomean([a / b for a, b in zip(family.widths(arch), family.widths(base.arch))]),
        group_multiplier=_geomean([a / b for a, b in zip(groups, groups0)]) if groups else 1.0,
        resolution=int(resolution), arch=arch, flops_ratio=flops / base_flops)


def _searched(ev: Evaluator, strat: Strategy, s: float, base: ModelSpec, base_flops: int) -> tuple[dict, int]:
    """(arch, resolution) the flops search settles on (see the module docstring); BadInput when even
    the nearest network the rounding allows misses s x the base flops by more than TOLERANCE."""
    base_depths = ev.family.depths(base.arch)
    search = _Search(ev, strat, s, s * base_flops)
    if s == 1.0:
        search.consider({"depths": base_depths, "w": 1.0, "g": 1.0, "r": base.resolution})
    else:
        search.along_direction()
        if search.best_error > REFINE_ABOVE and "w" in strat.axes:
            search.along_width()
        if search.best_error > REFINE_ABOVE:
            search.local_moves(strat.axes)
        if search.best_error > TOLERANCE * 0.8:
            search.local_moves("dr")
    cfg = search.best[2]
    if search.best_error > TOLERANCE:
        flops = ev.value(cfg["depths"], cfg["w"], cfg["g"], cfg["r"])[0]
        raise BadInput(f"{base.model} scaled by {strat.name} cannot reach x{s:g} its flops within "
                       f"{TOLERANCE:.0%}: the nearest network the rounding allows (at least one block per stage "
                       f"and 8 channels, resolution {MIN_RESOLUTION}..{MAX_RESOLUTION}) has x{flops / base_flops:.3g}; "
                       "choose a scale it can reach")
    return ev.arch(cfg["depths"], cfg["w"], cfg["g"]), cfg["r"]


def quick_counts(spec: ModelSpec, resolution: int | None = None) -> tuple[int, int, int]:
    """(flops, params, acts) per image of a base or scaled spec by the search's exact decomposition:
    the same totals as ``count_spec``, without building the full network."""
    return evaluator_for(spec.model).value_of(spec.arch or base_spec(spec.model).arch, resolution or spec.resolution)
