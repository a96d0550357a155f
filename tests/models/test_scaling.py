"""The scaling search lands on s x base flops with valid rounding, for every family and strategy."""

import math

import numpy as np
import pytest

from scaleprof.complexity import count_spec
from scaleprof.errors import BadInput
from scaleprof.models import ModelSpec, base_spec, build_model, parse_strategy, scale_spec
from scaleprof.models.zoo import get_family
from scaleprof.models.scaling import quick_counts

BASES = ["efficientnet_b0", "efficientnetv2_rw_t", "regnety_002", "tresnet_m", "resnet50"]
STRATEGIES = ["d", "w", "r", "dw", "dr", "wr", "dwr", "dWr", "en", "d1_w8_g8_r1"]
SCALES = [1.5, 2, 4, 8, 16]


def _valid_rounding(spec):
    family = get_family(spec.family)
    assert spec.resolution % 8 == 0
    assert all(isinstance(d, int) and d >= 1 for d in family.depths(spec.arch))
    assert all(w % 8 == 0 for w in family.widths(spec.arch)), family.widths(spec.arch)
    groups = family.group_widths(spec.arch)
    if groups:
        assert all(w % g == 0 for w, g in zip(family.widths(spec.arch), groups))


@pytest.mark.parametrize("base", BASES)
def test_flops_target_every_strategy_and_scale(base):
    misses = []
    for strategy in STRATEGIES:
        for s in SCALES:
            spec = scale_spec(base, strategy, s)
            if abs(spec.flops_ratio / s - 1) > 0.05:
                misses.append((strategy, s, round(spec.flops_ratio, 3)))
            _valid_rounding(spec)
    assert not misses, f"{base}: flops off target by more than 5%: {misses}"


@pytest.mark.parametrize("base,strategy,s", [
    ("efficientnet_b0", "dWr", 4), ("regnety_002", "d1_w8_g8_r1", 8), ("tresnet_m", "w", 2),
    ("resnet50", "dwr", 16), ("efficientnetv2_rw_t", "en", 2), ("regnety_002", "r", 1.5),
])
def test_reported_ratio_is_the_real_count(base, strategy, s):
    """flops_ratio comes from the search's decomposed counts: it equals a full count of the network."""
    spec = scale_spec(base, strategy, s)
    full = count_spec(spec)
    assert full.flops / count_spec(base).flops == pytest.approx(spec.flops_ratio, rel=1e-12)
    assert quick_counts(spec) == (full.flops, full.params, full.acts)
    assert quick_counts(spec, 160) == tuple(count_spec(spec, 160).totals().values())


def test_scaled_spec_round_trips_and_rebuilds():
    spec = scale_spec("regnety_002", "dWr", 4, alpha=0.7)
    assert spec.alpha == 0.7 and spec.strategy == "dWr" and spec.scale == 4.0
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    a, b = build_model(spec, device="meta"), build_model(again, device="meta")
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
    assert count_spec(again).flops == count_spec(spec).flops


def test_scale_one_is_the_base():
    spec = scale_spec("resnet50", "dwr", 1)
    assert spec.flops_ratio == 1.0 and spec.arch == base_spec("resnet50").arch
    assert spec.resolution == 224


def test_bad_scale():
    for bad in (0, -2, float("nan"), float("inf")):
        with pytest.raises(BadInput, match="scale must be"):
            scale_spec("resnet50", "w", bad)


# Growth exponents over s in {1, 2, 4, 8, 16} (log-log slope) against docs/conventions.md#growth-exponents:
# within 0.05 for flops and 0.1 for params and acts. The table is exact before rounding and ignores
# the stem and head, which no strategy but w/r scales: they are why e.g. depth scaling grows
# activations a little slower than s (measured ~0.92 for both bases).
@pytest.mark.parametrize("base", ["efficientnet_b0", "regnety_040"])
def test_growth_exponents_match_table(base):
    report = []
    for name in ["d", "w", "r", "dw", "dr", "wr", "dwr", "dWr"]:
        xs, ys = [], {"flops": [], "params": [], "acts": []}
        for s in [1, 2, 4, 8, 16]:
            counts = dict(zip(("flops", "params", "acts"), quick_counts(scale_spec(base, name, s))))
            xs.append(math.log(s))
            for key in ys:
                ys[key].append(math.log(counts[key]))
        want = parse_strategy(name).expected_growth
        for key, tol in (("flops", 0.05), ("params", 0.1), ("acts", 0.1)):
            got = float(np.polyfit(xs, ys[key], 1)[0])
            if abs(got - want[key]) > tol:
                report.append(f"{name} {key}: {got:.3f} vs {want[key]:.3f}")
    assert not report, f"{base}: " + "; ".join(report)
