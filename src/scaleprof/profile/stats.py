"""Latency statistics and the stopping rule of the end-to-end timing loop.

The confidence interval of the median is the distribution-free one built from order statistics
(the number of samples below the true median is Binomial(n, 1/2)), so it holds for the skewed,
long-tailed latency distributions of shared machines where a normal approximation does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaleprof.profile.types import LatencyStats

MIN_CI_SAMPLES = 6   # below this no pair of order statistics covers the median with 95%


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """0-based ranks (lo, hi) of the sorted samples that bound the median with at least
    ``confidence``; None when n is too small for any pair to reach it.

    P(x_(j) <= median <= x_(n-j+1)) = 1 - 2 * P(B <= j - 1), B ~ Binomial(n, 1/2) (1-based j);
    j is the largest rank that keeps the tail at or below (1 - confidence) / 2.
    """
    from scipy.stats import binom

    if n < 1:
        return None
    tail = (1.0 - confidence) / 2.0
    # cdf is increasing, so the count of i with cdf(i) <= tail is the largest admissible j.
    j = int(np.count_nonzero(binom.cdf(np.arange(n), n, 0.5) <= tail))
    if j < 1:
        return None
    return j - 1, n - j


def median_ci(samples, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median; (min, max) when n is too small."""
    xs = np.sort(np.asarray(samples, dtype=float))
    ranks = median_ci_ranks(len(xs), confidence)
    if ranks is None:
        return float(xs[0]), float(xs[-1])
    return float(xs[ranks[0]]), float(xs[ranks[1]])


def ci_relative_halfwidth(samples) -> float:
    """The wider side of the median's 95% CI as a fraction of the median (inf when undefined)."""
    xs = np.asarray(samples, dtype=float)
    if len(xs) < MIN_CI_SAMPLES:
        return math.inf
    med = float(np.median(xs))
    lo, hi = median_ci(xs)
    return max(med - lo, hi - med) / med if med > 0 else math.inf


def latency_stats(samples_ms, *, batch: int, total_s: float, timing_method: str,
              stop_reason: str = "") -> LatencyStats:
    xs = np.asarray(samples_ms, dtype=float)
    if xs.size == 0:
        raise ValueError("no samples")
    mean = float(xs.mean())
    std = float(xs.std(ddof=1)) if xs.size > 1 else 0.0
    return LatencyStats(
        median=float(np.median(xs)), mean=mean, min=float(xs.min()), max=float(xs.max()),
        p90=float(np.percentile(xs, 90)), p99=float(np.percentile(xs, 99)),
        std=std, cv=std / mean if mean > 0 else 0.0, ci95=median_ci(xs),
        iterations=int(xs.size), total_s=float(total_s), batch=int(batch),
        timing_method=timing_method, stop_reason=stop_reason,
    )


MAX_SAMPLES = 2_000_000     # timed iterations one run keeps (a microsecond model would fill memory in an hour)


@dataclass
class StoppingRule:
    """When to stop the timed iterations.

    First both minimums (count and duration) must be met; then the run stops as soon as the 95% CI
    of the median is within ``target_ci`` of it (``target_ci`` of 0 or None: stop at the minimums).
    ``max_time_s`` caps the whole timed phase, whatever the minimums say, and MAX_SAMPLES its samples.
    """

    min_iters: int
    min_time_s: float
    target_ci: float | None
    max_time_s: float
    _next_check: int = 0

    def done(self, samples: list[float], elapsed_s: float) -> str | None:
        """The reason to stop now, or None to go on. Cheap between CI checks."""
        n = len(samples)
        if elapsed_s >= self.max_time_s and n >= 2:
            return "time cap"
        if n >= MAX_SAMPLES:
            return "sample cap"
        if n < self.min_iters or elapsed_s < self.min_time_s:
            return None
        if not self.target_ci:
            return "minimums reached"
        if n < self._next_check:
            return None
        # Re-check the CI every ~5% more samples: sorting on every iteration would cost O(n^2 log n).
        self._next_check = n + max(1, n // 20)
        if ci_relative_halfwidth(samples) <= self.target_ci:
            return "ci target reached"
        return None
