"""Recommendation: the scalings (strategy, alpha, s) of a model with the most flops that a calibrated
target runs within a latency budget, found with the predictor alone.

Flops stand for capacity, as in the scaling papers (Tan and Le 2019; Dollar et al. 2021): at equal
flops the strategies reach similar accuracy, so the largest network that fits the budget is the one
to train. Along each strategy (and each alpha of dWr) latency grows with s, so the largest s that fits
is found by a coarse doubling grid and a few bisection steps on log s. A configuration fits when the
upper end of its interval is within the budget (``surely=False``: when its predicted latency is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scaleprof.errors import BadInput
from scaleprof.models import STRATEGIES, parse_strategy
from scaleprof.predict.sweep_calibration import Query, predict_query

DEFAULT_ALPHAS = tuple(round(0.1 * i, 1) for i in range(1, 11))     # a grid over (0, 1]
PAPER_ALPHA = 0.8
COARSE_SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)
REFINE_STEPS = 3


@dataclass(frozen=True)
class Candidate:
    query: Query
    flops: int
    params: int
    acts: int
    resolution: int
    prediction: object                     # calibration.Prediction
    budget_ms: float = math.inf

    @property
    def fits_surely(self) -> bool:
        """Even the interval's upper end is within the budget."""
        return self.prediction.high_ms <= self.budget_ms

    def to_dict(self) -> dict:
        q = self.query
        return {"model": q.model, "strategy": q.strategy, "alpha": q.alpha, "scale": q.scale, "batch": q.batch,
                "resolution": self.resolution, "flops": self.flops, "params": self.params, "acts": self.acts,
                **self.prediction.to_dict(), "upper_bound_within_budget": self.fits_surely}


def lines(strategies, alphas=DEFAULT_ALPHAS) -> list[tuple[str, float | None]]:
    """(strategy, alpha) pairs to search: every alpha of the grid for dWr, none for the others."""
    found = []
    for name in strategies:
        canonical = parse_strategy(name, None).name
        if canonical == "dWr":
            for a in alphas:
                if not 0 < a <= 1:
                    raise BadInput(f"alpha {a:g} is not in (0, 1]")
                found.append((canonical, float(a)))
        else:
            found.append((canonical, None))
    return found


def _candidate(cal, query: Query, budget: float) -> Candidate:
    spec, features, prediction = predict_query(cal, query)
    return Candidate(query, features.flops, features.params, features.acts,
                     query.resolution or spec.resolution, prediction, budget)


def _fits(cand: Candidate, budget: float, surely: bool) -> bool:
    return (cand.prediction.high_ms if surely else cand.prediction.latency_ms) <= budget


def largest_fitting(cal, query: Query, budget: float, max_scale: float = 16.0, surely: bool = True) -> Candidate | None:
    """The largest s along one strategy line that fits ``budget``."""
    best, failing = None, None
    for s in [s for s in COARSE_SCALES if s <= max_scale] + ([max_scale] if max_scale not in COARSE_SCALES else []):
        cand = _candidate(cal, replace(query, scale=s), budget)
        if _fits(cand, budget, surely):
            best = cand
        else:
            failing = s
            break
    if best is None or failing is None:
        return best
    low, high = best.query.scale, failing
    for _ in range(REFINE_STEPS):
        mid = float(f"{math.sqrt(low * high):.3g}")
        if not low < mid < high:
            break
        cand = _candidate(cal, replace(query, scale=mid), budget)
        if _fits(cand, budget, surely):
            best, low = cand, mid
        else:
            high = mid
    return best


def recommend(cal, model: str, budget_ms: float, batch: int = 1, strategies=None, alphas=DEFAULT_ALPHAS,
              precision: str = "fp32", max_scale: float = 16.0, resolution: int | None = None,
              surely: bool = True) -> list[Candidate]:
    """Per strategy line the largest fitting configuration, most flops first. BadInput when not even
    the base model fits (the budget is out of reach)."""
    if not 0 < budget_ms < math.inf:
        raise BadInput("--budget-ms must be a positive, finite number of milliseconds")
    strategies = list(strategies or [s for s in STRATEGIES if s != "en"])
    found = []
    for strategy, alpha in lines(strategies, alphas):
        query = Query(model, strategy, 1.0, alpha, batch, resolution, precision)
        cand = largest_fitting(cal, query, budget_ms, max_scale, surely)
        if cand is not None:
            found.append(cand)
    if not found:
        base = _candidate(cal, Query(model, None, 1.0, None, batch, resolution, precision), budget_ms)
        p = base.prediction
        raise BadInput(f"budget {budget_ms:g} ms is out of reach on {cal.target!r}: the smallest configuration "
                       f"searched ({model} at s = 1, batch {batch}) is predicted at {p.latency_ms:.3g} ms "
                       f"(interval {p.low_ms:.3g} - {p.high_ms:.3g} ms)")
    return sorted(found, key=lambda c: (-c.flops, c.prediction.latency_ms))


def best_alpha(cal, model: str, budget_ms: float, batch: int = 1, alphas=DEFAULT_ALPHAS,
               precision: str = "fp32", surely: bool = True) -> tuple[Candidate | None, Candidate | None]:
    """(the dWr alpha with the most flops within budget, dWr at the paper's alpha = 0.8)."""
    best, paper = None, None
    for a in sorted(set(alphas) | {PAPER_ALPHA}):
        cand = largest_fitting(cal, Query(model, "dWr", 1.0, a, batch, None, precision), budget_ms, surely=surely)
        if cand is None:
            continue
        if a == PAPER_ALPHA:
            paper = cand
        if a in alphas and (best is None or cand.flops > best.flops):
            best = cand
    return best, paper
