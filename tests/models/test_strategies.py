import math

import pytest

from scaleprof.errors import BadInput
from scaleprof.models import parse_strategy

# docs/conventions.md#growth-exponents: growth exponents of (flops, params, acts) before rounding.
TABLE = {"d": (1, 1, 1), "w": (1, 1, 0.5), "r": (1, 0, 1), "dw": (1, 1, 0.75), "dr": (1, 0.5, 1),
         "wr": (1, 0.5, 0.75), "dwr": (1, 2 / 3, 5 / 6), "dWr": (1, 0.9, 0.6)}


@pytest.mark.parametrize("name", list(TABLE))
def test_named_exponents_match_table(name):
    growth = parse_strategy(name).expected_growth
    for key, want in zip(("flops", "params", "acts"), TABLE[name]):
        assert growth[key] == pytest.approx(want)


def test_dwr_alpha_and_pycls_specs():
    s = parse_strategy("dWr", 0.5)
    assert (s.e_d, s.e_w, s.e_r, s.alpha) == (0.25, 0.25, 0.125, 0.5)
    # d1_w8_r1 is dWr(0.8) (docs/conventions.md#strategies); the g letter scales group width like width
    p = parse_strategy("d1_w8_g8_r1")
    q = parse_strategy("dWr")
    assert (p.e_d, p.e_w, p.e_r) == pytest.approx((q.e_d, q.e_w, q.e_r))
    assert p.e_g == pytest.approx(p.e_w) and p.name == "d1_w8_g8_r1"
    assert parse_strategy("dwr").exponents(grouped=True)["g"] == pytest.approx(1 / 6)
    assert parse_strategy("dwr").exponents(grouped=False)["g"] == 0


def test_en_keeps_efficientnet_proportions():
    en = parse_strategy("en")
    assert en.expected_growth["flops"] == pytest.approx(1.0)
    assert en.e_d / en.e_w == pytest.approx(math.log(1.2) / math.log(1.1))
    assert en.e_r / en.e_w == pytest.approx(math.log(1.15) / math.log(1.1))


@pytest.mark.parametrize("text,alpha,message", [
    ("dwR", None, "did you mean"), ("x", None, "unknown strategy"), ("dWr", 0.0, r"alpha must be in \(0, 1\]"),
    ("dWr", 1.5, "alpha must be"), ("dw", 0.5, "only to the dWr"), ("g1", None, "scales none"),
])
def test_bad_strategies(text, alpha, message):
    with pytest.raises(BadInput, match=message):
        parse_strategy(text, alpha)
