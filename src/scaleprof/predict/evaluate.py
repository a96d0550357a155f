"""Held-out evaluation: fit on some measured networks, predict the others, and compare with the best
single-metric fit (latency against flops, params or acts, linear or log-log) on the same split.

Points of one target, environment, precision and batch are compared. The same network measured under
several labels (s = 1 is the base network for every strategy) counts once, and a held-out set never
holds a network of its training set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaleprof.predict.network_fit import fit_batch
from scaleprof.predict.samples import distinct

METRICS = ("flops", "params", "acts")
SMALL_CALIBRATION = 8


@dataclass(frozen=True)
class Split:
    name: str
    train: tuple
    test: tuple


def _held_out(name: str, train, rest) -> Split:
    networks = {s.network for s in train}
    return Split(name, tuple(train), tuple(s for s in rest if s.network not in networks))


def leave_one_strategy_out(samples) -> list[Split]:
    samples = distinct(samples)
    strategies = sorted({s.strategy for s in samples})
    return [_held_out(f"without {name}", [s for s in samples if s.strategy != name],
                      [s for s in samples if s.strategy == name]) for name in strategies]


def leave_largest_scale_out(samples) -> list[Split]:
    samples = distinct(samples)
    largest = max((s.scale for s in samples), default=0)
    return [_held_out(f"without s={largest:g}", [s for s in samples if s.scale < largest],
                      [s for s in samples if s.scale >= largest])]


def _position(sample) -> list[float]:
    f = sample.features
    return [math.log(max(v, 1)) for v in (f.flops * sample.batch, f.acts * sample.batch, f.layers, f.params,
                                          f.resolution)]


def select_calibration(samples, k: int = SMALL_CALIBRATION) -> list:
    """k networks spread over the space of (flops, acts, layers, params, resolution), logs standardised:
    the smallest network first, then repeatedly the one farthest from those chosen."""
    pool = distinct(samples)
    if len(pool) <= k:
        return pool
    points = [_position(s) for s in pool]
    spread = [max(c) - min(c) or 1.0 for c in zip(*points)]
    scaled = [[v / w for v, w in zip(p, spread)] for p in points]
    chosen = [min(range(len(pool)), key=lambda i: (pool[i].features.flops, i))]
    while len(chosen) < k:
        def distance(i):
            return min(math.dist(scaled[i], scaled[j]) for j in chosen)
        chosen.append(max((i for i in range(len(pool)) if i not in chosen), key=lambda i: (distance(i), -i)))
    return [pool[i] for i in sorted(chosen)]


def small_calibration(samples, k: int = SMALL_CALIBRATION) -> list[Split]:
    train = select_calibration(samples, k)
    return [_held_out(f"{len(train)} calibration networks", train, distinct(samples))]


@dataclass(frozen=True)
class Score:
    """Relative errors (predicted / measured - 1) on held-out points."""

    errors: tuple = ()
    labels: tuple = ()
    method: str = ""
    covered: int | None = None          # held-out measurements inside the predicted interval

    @property
    def n(self) -> int:
        return len(self.errors)

    def within(self, tolerance: float) -> float | None:
        return sum(1 for e in self.errors if abs(e) <= tolerance) / self.n if self.n else None

    @property
    def median(self) -> float | None:
        ranked = sorted(abs(e) for e in self.errors)
        return ranked[len(ranked) // 2] if ranked else None

    @property
    def worst(self) -> tuple:
        if not self.errors:
            return (None, "")
        i = max(range(self.n), key=lambda j: abs(self.errors[j]))
        return (self.errors[i], self.labels[i])

    def to_dict(self) -> dict:
        worst, label = self.worst
        return {"n": self.n, "within_10": self.within(0.10), "within_20": self.within(0.20),
                "median_abs_error": self.median, "worst_error": worst, "worst_point": label,
                "method": self.method, "interval_coverage": (self.covered / self.n) if self.n and
                self.covered is not None else None}


def single_metric_fit(train, metric: str, log: bool):
    """A function sample -> predicted ms from latency fitted against one metric (x batch, except params)."""
    import numpy as np

    def value(s):
        v = getattr(s.features, metric)
        return float(v if metric == "params" else v * s.batch)

    x = np.array([value(s) for s in train])
    y = np.array([s.latency_ms for s in train])
    if len(set(x)) < 2:
        return lambda s: float(np.median(y))
    if log:
        slope, icpt = np.polyfit(np.log(x), np.log(y), 1)
        return lambda s: float(math.exp(icpt) * value(s) ** slope)
    slope, icpt = np.polyfit(x, y, 1)
    return lambda s: float(slope * value(s) + icpt)


def _score(splits, predictor_for, method: str) -> Score:
    errors, labels, covered = [], [], 0
    for split in splits:
        if not split.test or len(split.train) < 2:
            continue
        predict = predictor_for(split.train)
        for s in split.test:
            value = predict(s)
            ms, interval = value[:2] if isinstance(value, tuple) else (value, None)
            errors.append(ms / s.latency_ms - 1.0)
            labels.append(s.label)
            covered += bool(interval and interval[0] <= s.latency_ms <= interval[1])
    return Score(tuple(errors), tuple(labels), method, covered)


def best_single_metric(splits) -> Score:
    """The single-metric fit (of 3 metrics x linear/log-log) with the most held-out points within 10%."""
    scores = [_score(splits, lambda train, m=m, lg=lg: single_metric_fit(train, m, lg),
                     f"{m} ({'log-log' if lg else 'linear'})") for m in METRICS for lg in (False, True)]
    scores = [s for s in scores if s.n]
    return max(scores, key=lambda s: (s.within(0.10), -(s.median or 0)), default=Score())


def structural_score(splits, use_layers: bool = True) -> Score:
    """The structural model on the same splits, with its interval (see calibration.fit_batch)."""
    def predictor_for(train):
        fitted = fit_batch(list(train), use_layers=use_layers)
        return lambda s: fitted.predict(s.features, s.batch, s.precision)
    return _score(splits, predictor_for, "structural")


@dataclass(frozen=True)
class Evaluation:
    """One target, precision and batch: the structural model and the best single-metric fit per split."""

    target: str
    batch: int
    precision: str
    networks: int
    results: dict = field(default_factory=dict)     # split kind -> {"model": Score, "baseline": Score}

    def to_dict(self) -> dict:
        return {"target": self.target, "batch": self.batch, "precision": self.precision, "networks": self.networks,
                "splits": {k: {w: s.to_dict() for w, s in v.items()} for k, v in self.results.items()}}


SPLITS = {"leave one strategy out": leave_one_strategy_out,
          "leave largest scale out": leave_largest_scale_out,
          f"at most {SMALL_CALIBRATION} calibration networks": small_calibration}


def evaluate(samples, use_layers: bool = True) -> Evaluation:
    """Every split kind for one group of samples (one target, precision and batch)."""
    samples = list(samples)
    first = samples[0]
    results = {}
    for kind, make in SPLITS.items():
        splits = make(samples)
        results[kind] = {"model": structural_score(splits, use_layers), "baseline": best_single_metric(splits)}
    return Evaluation(first.target, first.batch, first.precision, len(distinct(samples)), results)
