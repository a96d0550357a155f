"""Analysis on synthetic rows with known answers."""

from __future__ import annotations

import math
import statistics

import pytest

from tests.report.synthetic import BASE, points, synthetic_rows
from scaleprof.report.analysis import analyze, expected_exponents, growth_exponents, within_budget
from scaleprof.report.fits import fit_linear, fit_loglog, pearson_r


def test_latency_linear_in_acts_ranks_acts_first_with_r_1():
    rows = synthetic_rows(strategies=("d", "w", "r", "dwr", "dWr"), a_ms_per_mact=1.5, b_ms=2.0)
    a = analyze(points(rows))
    ranked = a.ranking[("cpu-ort", 1)]
    assert [m.metric for m in ranked][0] == "acts"
    acts = ranked[0]
    assert acts.r == pytest.approx(1.0, abs=1e-9) and acts.linear.mape == pytest.approx(0.0, abs=1e-9)
    assert acts.linear.slope * 1e6 == pytest.approx(1.5) and acts.linear.intercept == pytest.approx(2.0)
    assert all(m.r < 0.99 for m in ranked[1:] if m.r is not None)
    assert ranked[-1].metric == "layers" and ranked[-1].r is None           # not counted in these rows
    assert "On cpu-ort at batch 1, acts predicts latency best: Pearson r=1.000" in a.verdicts()[("cpu-ort", 1)]


def test_latency_linear_in_flops_ranks_flops_first():
    rows = synthetic_rows(strategies=("d", "w", "r", "dwr"))
    for r in rows:
        r["latency_ms_median"] = 4e-9 * r["flops"] + 1.0
    a = analyze(points(rows))
    assert a.ranking[("cpu-ort", 1)][0].metric == "flops" and a.ranking[("cpu-ort", 1)][0].r == pytest.approx(1.0)


def test_batch_work_is_compared_per_batch():
    rows = synthetic_rows(strategies=("d", "w", "r"), batches=(1, 4, 16))
    a = analyze(points(rows))
    best = a.ranking[("cpu-ort", "pooled")][0]          # pooled, the batch's work (acts x batch) still fits
    assert best.metric == "acts" and best.r == pytest.approx(1.0)
    for batch in (1, 4, 16):
        best = a.ranking[("cpu-ort", batch)][0]
        assert best.metric == "acts" and best.r == pytest.approx(1.0) and best.linear.n == 9
    assert set(a.verdicts()) == {("cpu-ort", 1), ("cpu-ort", 4), ("cpu-ort", 16)}    # pooled: no verdict


def test_groups_are_targets():
    rows = synthetic_rows(target="cpu-ort") + synthetic_rows(target="cpu-torch", a_ms_per_mact=3.0)
    a = analyze(points(rows))
    assert set(a.ranking) == {("cpu-ort", 1), ("cpu-torch", 1)}
    assert a.fits[("cpu-torch", 1)]["acts"].linear.slope * 1e6 == pytest.approx(3.0)


def test_power_law_fit_and_pearson_edge_cases():
    x = [1, 2, 4, 8, 16]
    fit = fit_loglog(x, [3 * v ** 0.5 for v in x])
    assert fit.slope == pytest.approx(0.5) and math.exp(fit.intercept) == pytest.approx(3.0)
    assert fit.r == pytest.approx(1.0) and fit.mape == pytest.approx(0.0, abs=1e-12)
    assert pearson_r([1, 2, 3], [5, 5, 5]) is None and fit_linear([1, 1], [1, 2]) is None
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert fit_linear([1], [1]) is None


def test_expected_exponents_follow_the_table():
    # Dollar et al. 2021 ("Fast and Accurate Model Scaling"), Table 1: with d = s^e_d, w = s^e_w, r = s^e_r,
    # flops ~ d w^2 r^2, params ~ d w^2, acts ~ d w r^2, e.g. dwr (1/3, 1/6, 1/6): params 2/3, acts 5/6.
    table = {"d": (1, 1, 1), "w": (1, 1, 0.5), "r": (1, 0, 1), "dw": (1, 1, 0.75), "dr": (1, 0.5, 1),
             "wr": (1, 0.5, 0.75), "dwr": (1, 2 / 3, 5 / 6)}
    for strategy, (f, p, a) in table.items():
        e = expected_exponents(strategy)
        assert (e["flops"], e["params"], e["acts"]) == pytest.approx((f, p, a)), strategy
    for alpha in (0.2, 0.8, 1.0):
        e = expected_exponents("dWr", alpha)
        assert (e["flops"], e["params"], e["acts"]) == pytest.approx((1, (1 + alpha) / 2, 1 - alpha / 2))
    assert expected_exponents("d1_w8_r1") == pytest.approx(expected_exponents("dWr", 0.8))
    assert expected_exponents("d1_w8_g8_r1") == pytest.approx(expected_exponents("dWr", 0.8))
    assert expected_exponents("en")["flops"] == pytest.approx(1.0)


def test_growth_exponents_are_measured_per_strategy():
    rows = synthetic_rows(strategies=("d", "w", "r", "dwr", "dWr"), scales=(1, 2, 4, 8), b_ms=0.0)
    found = {e.strategy: e for e in growth_exponents(points(rows))}
    assert set(found) == {"d", "w", "r", "dwr", "dWr(0.8)"}
    for label, e in found.items():
        for what in ("flops", "params", "acts"):
            assert e.measured[what] == pytest.approx(e.expected[what], abs=1e-3), (label, what)
        assert e.measured["latency"] == pytest.approx(e.expected["acts"], abs=1e-3)   # latency = a * acts
        assert e.scales == (1.0, 2.0, 4.0, 8.0)


def test_budget_picks_the_largest_config_that_fits():
    rows = synthetic_rows(strategies=("d", "w", "r"), batches=(1, 4))
    budget = 20.0
    picks = {p.batch: p for p in within_budget(points(rows), budget)}
    for batch, pick in picks.items():
        fitting = [r for r in rows if r["batch"] == batch and r["latency_ms_median"] <= budget]
        assert pick.fitting == len(fitting)
        if fitting:
            assert pick.row.flops == max(r["flops"] for r in fitting)
            assert pick.row.latency_ms <= budget
    assert picks[1].row is not None
    assert all(p.row is None and p.fitting == 0 for p in within_budget(points(rows), 0.001))


def test_default_budget_is_the_median_latency():
    a = analyze(points(synthetic_rows()))
    assert len(a.budget_values) == 1 and a.budgets
    assert BASE["acts"] * 1.5 / 1e6 < a.budget_values[0] < 100
    median = statistics.median(r["latency_ms_median"] for r in synthetic_rows())
    assert a.budget_values[0] == pytest.approx(median, rel=0.05)      # rounded to two significant digits


def test_layer_count_is_a_metric_and_verdicts_are_per_batch():
    # launch-bound at batch 1 (latency = 0.02 ms per layer), work-bound at batch 64 (acts)
    rows = synthetic_rows(strategies=("d", "w", "r", "dwr"), batches=(1, 64))
    for r in rows:
        r["layer_count"] = int(189 * (r["scale"] if r["strategy"] == "d" else r["scale"] ** (1 / 3)
                                      if r["strategy"] == "dwr" else 1))
        if r["batch"] == 1:
            r["latency_ms_median"] = 0.02 * r["layer_count"] + 0.5
    a = analyze(points(rows))
    assert a.best_metric(("cpu-ort", 1)).metric == "layers" and a.best_metric(("cpu-ort", 1)).r == pytest.approx(1.0)
    assert a.best_metric(("cpu-ort", 64)).metric == "acts"
    verdicts = a.verdicts()
    assert list(verdicts) == [("cpu-ort", 1), ("cpu-ort", 64)]
    assert verdicts[("cpu-ort", 1)].startswith("On cpu-ort at batch 1, layers predicts latency best: Pearson r=1.000")
    layers = a.fits[("cpu-ort", 1)]["layers"].linear
    assert layers.slope == pytest.approx(0.02) and layers.intercept == pytest.approx(0.5)
    # the layers a batch runs do not grow with it; the exponent against s is measured
    assert a.fits[("cpu-ort", 64)]["layers"].linear.n == 12
    d = next(e for e in growth_exponents(points(rows)) if e.strategy == "d" and e.batch == 1)
    assert d.measured["layers"] == pytest.approx(1.0, abs=0.01) and "layers" not in d.expected


def test_rows_without_a_layer_count_fit_the_other_metrics():
    rows = synthetic_rows(strategies=("d", "w", "r"))
    rows[0]["layer_count"] = 189                           # one point counted, the others not: no layers fit
    a = analyze(points(rows))
    assert a.fits[("cpu-ort", 1)]["layers"].linear is None and a.best_metric(("cpu-ort", 1)).metric == "acts"
