import math

import numpy as np
import pytest
from scipy.stats import binom

from scaleprof.errors import BadInput
from scaleprof.profile.stats import StoppingRule, ci_relative_halfwidth, median_ci, median_ci_ranks, latency_stats
from scaleprof.profile.timing import time_runner, validate_settings
from scaleprof.profile.types import TimingSettings


@pytest.mark.parametrize("n, lo, hi", [(6, 1, 6), (10, 2, 9), (20, 6, 15), (50, 18, 33), (100, 40, 61)])
def test_median_ci_ranks_match_published_table(n, lo, hi):
    # 1-based ranks of the distribution-free 95% CI of the median (Conover, Practical
    # Nonparametric Statistics, table A3; also the binomial construction below).
    assert median_ci_ranks(n) == (lo - 1, hi - 1)


@pytest.mark.parametrize("n", [6, 7, 11, 31, 64, 257, 1000])
def test_median_ci_ranks_cover_at_least_95_and_are_the_tightest(n):
    lo, _ = median_ci_ranks(n)
    j = lo + 1                                   # 1-based lower rank
    coverage = 1 - 2 * binom.cdf(j - 1, n, 0.5)
    assert coverage >= 0.95
    assert 1 - 2 * binom.cdf(j, n, 0.5) < 0.95   # one rank tighter would not cover


def test_median_ci_too_few_samples_is_min_max():
    assert median_ci_ranks(5) is None
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert ci_relative_halfwidth([1.0, 1.0, 1.0]) == math.inf


def test_median_ci_empirical_coverage():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        x = rng.lognormal(0.0, 0.5, size=40)     # skewed like latencies; true median = 1
        lo, hi = median_ci(x)
        hits += lo <= 1.0 <= hi
    assert 0.94 <= hits / 2000 <= 0.99


def test_summarise_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.gamma(4.0, 2.0, size=333)
    s = latency_stats(x, batch=8, total_s=1.5, timing_method="perf_counter")
    assert s.median == pytest.approx(np.median(x))
    assert s.mean == pytest.approx(x.mean())
    assert s.min == x.min() and s.max == x.max()
    assert s.p90 == pytest.approx(np.percentile(x, 90))
    assert s.p99 == pytest.approx(np.percentile(x, 99))
    assert s.std == pytest.approx(x.std(ddof=1))
    assert s.cv == pytest.approx(x.std(ddof=1) / x.mean())
    srt = np.sort(x)
    lo, hi = median_ci_ranks(333)
    assert s.ci95 == (srt[lo], srt[hi])
    assert s.ci95[0] <= s.median <= s.ci95[1]
    assert s.throughput == pytest.approx(8 * 1000 / np.median(x))
    assert s.iterations == 333


def test_stopping_rule_needs_both_minimums_then_the_ci():
    rule = StoppingRule(min_iters=10, min_time_s=1.0, target_ci=0.01, max_time_s=5.0)
    flat = [10.0] * 50
    assert rule.done(flat[:9], 2.0) is None           # count not reached
    assert rule.done(flat[:30], 0.5) is None          # time not reached
    assert rule.done(flat[:30], 1.1) == "ci target reached"
    noisy = list(np.random.default_rng(0).uniform(5, 15, size=40))
    rule = StoppingRule(min_iters=10, min_time_s=0.0, target_ci=0.01, max_time_s=5.0)
    assert rule.done(noisy, 1.0) is None
    assert rule.done(noisy, 5.0) == "time cap"
    assert StoppingRule(10, 0.0, 0.0, 5.0).done(noisy, 0.1) == "minimums reached"


def test_time_runner_stops_on_ci_and_reports(monkeypatch):
    values = iter(np.random.default_rng(3).normal(10.0, 0.1, size=100000))

    def runner():
        return float(next(values))

    runner.timing_method = "fake"
    s = time_runner(runner, TimingSettings(warmup_iters=3, warmup_s=0.0, min_iters=20, min_time_s=0.0,
                                           target_ci=0.01, max_time_s=5.0), batch=2, progress=False)
    assert s.stop_reason == "ci target reached"
    assert s.warmup_iters == 3 and s.timing_method == "fake" and s.batch == 2
    assert (s.ci95[1] - s.ci95[0]) / 2 / s.median <= 0.01
    assert s.iterations >= 20


@pytest.mark.parametrize("change, words", [
    (dict(min_iters=0), "minimum iterations"), (dict(max_time_s=0.0), "maximum time"),
    (dict(max_time_s=-1.0), "maximum time"), (dict(min_time_s=-1.0), "minimum time"),
    (dict(warmup_iters=-1), "warm-up iterations"), (dict(layer_iters=0), "layer-profiling"),
    (dict(target_ci=1.5), "target CI"), (dict(min_time_s=20.0, max_time_s=10.0), "exceeds"),
])
def test_bad_settings(change, words):
    with pytest.raises(BadInput, match=words):
        validate_settings(TimingSettings(**change))
