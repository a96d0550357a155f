"""Fits of latency against a metric: least squares, linear and log-log, each with Pearson's r and
the fit's error (scaleprof.report.analysis fits every slice of the points with these, and the
layers of one engine)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Fit:
    """y ~ slope * x + intercept (linear) or log y ~ slope * log x + intercept (log-log)."""

    kind: str                 # "linear" or "loglog"
    slope: float
    intercept: float
    r: float | None           # Pearson r of (x, y), or of (log x, log y); None if undefined
    rmse: float               # of y, in y's units (ms), after transforming the prediction back
    mape: float               # mean |pred - y| / y: the fit's relative error
    n: int

    def predict(self, x):
        x = np.asarray(x, dtype=float)
        if self.kind == "linear":
            return self.slope * x + self.intercept
        return np.exp(self.intercept) * np.power(x, self.slope)

    def to_dict(self) -> dict:
        return asdict(self)


def pearson_r(x, y) -> float | None:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    return max(-1.0, min(1.0, r))


def fit_linear(x, y) -> Fit | None:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return _finish("linear", float(slope), float(intercept), pearson_r(x, y), x, y)


def fit_loglog(x, y) -> Fit | None:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = (x > 0) & (y > 0)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    return _finish("loglog", float(slope), float(intercept), pearson_r(lx, ly), x, y)


def _finish(kind, slope, intercept, r, x, y) -> Fit:
    fit = Fit(kind, slope, intercept, r, 0.0, 0.0, len(x))
    pred = fit.predict(x)
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    mape = float(np.mean(np.abs(pred - y) / np.abs(y))) if np.all(y != 0) else math.nan
    return Fit(kind, slope, intercept, r, rmse, mape, len(x))


@dataclass
class MetricFits:
    group: str                # the slice's label (slice_label)
    metric: str
    linear: Fit | None
    loglog: Fit | None

    @property
    def r(self) -> float | None:
        return self.linear.r if self.linear else None

    @property
    def r_log(self) -> float | None:
        return self.loglog.r if self.loglog else None


def layer_predictions(layers) -> dict[str, MetricFits]:
    """Within one engine: does a layer's time follow its flops or its acts? (layers with counts)"""
    out = {}
    for metric in ("flops", "acts"):
        pts = [(float(getattr(l, metric)), float(l.time_ms)) for l in layers
               if getattr(l, metric) and float(l.time_ms) > 0]
        x = [p[0] for p in pts]
        y = [p[1] for p in pts]
        out[metric] = MetricFits("layers", metric, fit_linear(x, y), fit_loglog(x, y))
    return out
