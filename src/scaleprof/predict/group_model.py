"""The latency model: per op group, a fixed cost per layer, a cost per flop and a cost per byte moved,
summed over the network, with an end-to-end correction.

    t(network) = c0 + kappa * sum_g (per_layer_g * layers_g + per_flop_g * flops_g + per_byte_g * bytes_g)

Every coefficient is non-negative (a layer cannot make a network faster). Fits minimise the relative
error (latency spans orders of magnitude across a sweep). Two ways to fit:

- ``fit_from_layers``: where per-layer profiles were recorded, each group's coefficients are fitted to
  that group's measured time across the calibration networks (one small fit per group, so a few
  networks determine them), then ``c0`` and ``kappa`` to the end-to-end latencies;
- ``fit_end_to_end``: from end-to-end latencies alone, all coefficients at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaleprof.predict.features import ELEMENT_BYTES, GROUPS, NetworkFeatures

OVERHEAD = "overhead"            # layers a backend adds (layout reorders, copies): no counted module
TERMS = ("per_layer", "per_flop", "per_byte")
# profile categories (scaleprof.profile.mapping.CATEGORIES) -> feature groups
PROFILE_GROUPS = {"conv": "conv", "depthwise conv": "depthwise conv", "SE": "SE", "activation": "elementwise",
                  "elementwise": "elementwise", "normalization": "elementwise", "pooling": "pooling",
                  "linear": "linear", "reformat/copy": OVERHEAD, "other": OVERHEAD}


def group_terms(features: NetworkFeatures, batch: int, precision: str = "fp32") -> dict[str, list[float]]:
    """Per group [layers, flops, bytes] of one batch; the overhead group sees every layer and every map byte."""
    size = ELEMENT_BYTES.get(precision, 4)
    terms = {}
    for name in GROUPS:
        g = features.groups.get(name)
        if g is None:
            terms[name] = [0.0, 0.0, 0.0]
            continue
        terms[name] = [float(g.layers), float(g.flops) * batch,
                       float(g.act_elements * batch + g.weight_elements) * size]
    terms[OVERHEAD] = [float(features.layers), 0.0,
                       sum(float(g.act_elements) for g in features.groups.values()) * batch * size]
    return terms


def design_row(features: NetworkFeatures, batch: int, precision: str = "fp32") -> list[float]:
    """The end-to-end fit's regressors: a constant, then [layers, flops, bytes] of each group."""
    terms = group_terms(features, batch, precision)
    return [1.0] + [v for name in (*GROUPS, OVERHEAD) for v in terms[name]]


def nnls_relative(rows, targets) -> list[float]:
    """Non-negative coefficients minimising sum((row . x / target - 1)^2). Columns are rescaled first so
    that flops (1e9) and layer counts (1e2) weigh alike."""
    import numpy as np
    from scipy.optimize import nnls

    x = np.asarray(rows, dtype=float)
    y = np.asarray(targets, dtype=float)
    weighted = x / y[:, None]
    scale = np.abs(weighted).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(weighted / scale, np.ones(len(y)), maxiter=50 * x.shape[1])
    return [float(c) for c in coef / scale]


@dataclass(frozen=True)
class LatencyModel:
    """Fitted coefficients (milliseconds per layer / flop / byte) per group, plus c0 and kappa."""

    coefficients: dict = field(default_factory=dict)   # group -> [per_layer, per_flop, per_byte]
    c0: float = 0.0
    kappa: float = 1.0
    method: str = "end-to-end"                          # or "per-layer profiles"

    def group_times(self, features: NetworkFeatures, batch: int, precision: str = "fp32") -> dict[str, float]:
        terms = group_terms(features, batch, precision)
        return {g: self.kappa * sum(c * t for c, t in zip(self.coefficients.get(g, (0, 0, 0)), terms[g]))
                for g in terms}

    def predict(self, features: NetworkFeatures, batch: int, precision: str = "fp32") -> float:
        return self.c0 + sum(self.group_times(features, batch, precision).values())

    def to_dict(self) -> dict:
        return {"coefficients": {g: list(v) for g, v in self.coefficients.items()}, "c0": self.c0,
                "kappa": self.kappa, "method": self.method}

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyModel":
        """The model ``data`` holds; ValueError for anything a fit cannot have made: a group missing or
        unknown, a coefficient list of other than three, a coefficient that is no finite non-negative
        number (the fits are non-negative least squares), a kappa that is not positive."""
        coefficients = data["coefficients"]
        if not isinstance(coefficients, dict) or set(coefficients) != {*GROUPS, OVERHEAD}:
            raise ValueError(f"coefficients must name the groups {', '.join((*GROUPS, OVERHEAD))}")
        if any(not isinstance(v, list) or len(v) != 3 for v in coefficients.values()):
            raise ValueError("every group needs three coefficients")
        checked = {g: [_coefficient(x, f"{g} coefficient") for x in v] for g, v in coefficients.items()}
        kappa = _coefficient(data["kappa"], "kappa")
        if kappa <= 0:
            raise ValueError(f"kappa must be positive, got {kappa!r}")
        return cls(coefficients=checked, c0=_coefficient(data["c0"], "c0"), kappa=kappa,
                   method=str(data.get("method", "end-to-end")))


def _coefficient(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {str(value)[:40]!r} is not a finite non-negative number")
    return float(value)


def fit_end_to_end(samples) -> LatencyModel:
    """All coefficients from end-to-end latencies (samples: .features .batch .precision .latency_ms)."""
    rows = [design_row(s.features, s.batch, s.precision) for s in samples]
    coef = nnls_relative(rows, [s.latency_ms for s in samples])
    groups = (*GROUPS, OVERHEAD)
    per_group = {g: coef[1 + 3 * i: 4 + 3 * i] for i, g in enumerate(groups)}
    return LatencyModel(coefficients=per_group, c0=coef[0], kappa=1.0, method="end-to-end")


def fit_from_layers(samples) -> LatencyModel:
    """Group coefficients from per-layer profiles (samples with .layer_times: group -> ms of one batch),
    then c0 and kappa from the end-to-end latencies of every sample."""
    profiled = [s for s in samples if s.layer_times]
    per_group = {}
    for g in (*GROUPS, OVERHEAD):
        rows, times = [], []
        for s in profiled:
            t = s.layer_times.get(g, 0.0)
            terms = group_terms(s.features, s.batch, s.precision)[g]
            if t > 0 and any(terms):
                rows.append(terms)
                times.append(t)
        per_group[g] = nnls_relative(rows, times) if rows else [0.0, 0.0, 0.0]
    raw = LatencyModel(coefficients=per_group, method="per-layer profiles")
    sums = [raw.predict(s.features, s.batch, s.precision) for s in samples]
    c0, kappa = nnls_relative([[1.0, v] for v in sums], [s.latency_ms for s in samples])
    if kappa <= 0:
        kappa = 1.0
    return LatencyModel(coefficients=per_group, c0=c0, kappa=kappa, method="per-layer profiles")


def fit(samples, use_layers: bool = True) -> LatencyModel:
    """fit_from_layers when at least three samples carry per-layer profiles, else fit_end_to_end."""
    samples = list(samples)
    if use_layers and sum(1 for s in samples if s.layer_times) >= 3:
        return fit_from_layers(samples)
    return fit_end_to_end(samples)
