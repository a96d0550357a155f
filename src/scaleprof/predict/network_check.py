"""The kernel model against a sweep's measurements: per profiled point, the network's predicted and
measured latency and each profiled layer's predicted and measured time; and the network-level
correction fitted to such points (a run overhead plus a scale factor, in relative error), with its
leave-one-network-out error.

Measured means the point's fastest timed run, the statistic the kernel timings themselves use.
The correction is fitted only on the networks of the sweep it is given (the zoo's, e.g. the shipped
`zoo_mix` config): networks judged afterwards never enter it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scaleprof.errors import BadInput
from scaleprof.predict.kernel_calibration import ort_settings
from scaleprof.predict.kernel_prediction import predict_kernels
from scaleprof.predict.samples import load_points
from scaleprof.predict.sweep_kernels import point_graph

MIN_NETWORKS = 3                  # below this only a scale factor is fitted


@dataclass(frozen=True)
class LayerCheck:
    name: str
    op: str
    kind: str
    predicted_ms: float
    measured_ms: float


@dataclass(frozen=True)
class PointCheck:
    label: str
    measured_ms: float            # the point's fastest timed run (its median where no minimum was kept)
    predicted_ms: float           # the kernel model, without any network correction
    layers: tuple                 # LayerCheck of every profiled layer named like a kernel, in run order
    unmatched: int = 0            # profiled layers no kernel is named after

    @property
    def error(self) -> float:
        return self.predicted_ms / self.measured_ms - 1


@dataclass(frozen=True)
class NetworkCorrection:
    """latency = offset_ms + scale x the kernel model's latency."""

    offset_ms: float = 0.0
    scale: float = 1.0
    networks: tuple = ()          # labels of the networks it was fitted on
    loo_errors: tuple = ()        # (label, uncorrected error, corrected error held out)
    source: str = ""              # the sweep it was fitted on

    def apply(self, latency_ms: float) -> float:
        return self.offset_ms + self.scale * latency_ms

    def to_dict(self) -> dict:
        return {"offset_ms": self.offset_ms, "scale": self.scale, "networks": list(self.networks),
                "loo_errors": [list(e) for e in self.loo_errors], "source": self.source}

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkCorrection":
        """ValueError for values no fit gives (a damaged or edited file)."""
        offset, scale = float(data["offset_ms"]), float(data["scale"])
        if not (math.isfinite(offset) and math.isfinite(scale) and offset >= 0 and scale > 0):
            raise ValueError(f"network correction offset {offset!r} ms, scale {scale!r}")
        return cls(offset, scale, tuple(data.get("networks") or ()),
                   tuple(tuple(e) for e in data.get("loo_errors") or ()), str(data.get("source") or ""))


def point_check(point, cal) -> PointCheck:
    """Predicted against measured for one profiled point of ``cal``'s target (exports it, cached)."""
    graph = point_graph(point, *ort_settings(cal.target_config))
    by_name = {k.name: k for k in graph.kernels}
    layers, unmatched = [], 0
    for layer in point.layers.layers if point.layers else ():
        kernel = by_name.get(layer.name)
        if kernel is None or kernel.kind == "view":
            unmatched += layer.time_ms > 0
            continue
        layers.append(LayerCheck(layer.name, kernel.op, kernel.kind, cal.model.estimate(kernel).ms,
                                 float(layer.time_ms)))
    predicted = predict_kernels(cal.model, graph.kernels).latency_ms
    label = f"{point.model} {point.strategy or ''} x{point.scale:g} @{point.resolution} b{point.batch}"
    return PointCheck(" ".join(label.split()), fastest_ms(point.latency), predicted, tuple(layers), unmatched)


def fastest_ms(latency) -> float:
    """The fastest timed run: the statistic the kernel timings use (minima), which other processes' time
    slices on a shared machine do not inflate, as they do a median."""
    return float(latency.min if latency.min else latency.median)


def usable_points(points, cal) -> list:
    """The measured points of ``cal``'s target and environment that can be exported again."""
    return [p for p in points if p.target == cal.target and p.env_key == cal.env_key and p.latency is not None
            and p.spec and p.resolution]


def fit_correction(checks, source: str = "") -> NetworkCorrection:
    """offset + scale x predicted, least squares in relative error (offset >= 0; scale only below
    MIN_NETWORKS), with each network's error held out of the fit; ``source`` names the sweep."""
    if not checks:
        raise BadInput("no measured network to fit a network-level correction to")
    offset, scale = _fit([(c.predicted_ms, c.measured_ms) for c in checks])
    held_out = []
    for i, c in enumerate(checks):
        rest = [(o.predicted_ms, o.measured_ms) for j, o in enumerate(checks) if j != i]
        if rest:
            o, s = _fit(rest)
            held_out.append((c.label, c.error, (o + s * c.predicted_ms) / c.measured_ms - 1))
    return NetworkCorrection(offset, scale, tuple(c.label for c in checks), tuple(held_out), str(source))


def _fit(pairs) -> tuple[float, float]:
    import numpy as np

    ratios = [p / m for p, m in pairs]
    scale_only = sum(ratios) / sum(r * r for r in ratios)
    if len(pairs) < MIN_NETWORKS:
        return 0.0, scale_only
    rows = np.array([[1.0 / m, p / m] for p, m in pairs])
    (offset, scale), *_ = np.linalg.lstsq(rows, np.ones(len(pairs)), rcond=None)
    if offset < 0 or scale <= 0:
        return 0.0, scale_only
    return float(offset), float(scale)


def sweep_checks(path, cal, progress=None) -> list[PointCheck]:
    """PointCheck of every measured point of ``cal``'s target and environment in a sweep directory or
    results.json (batch and resolution as measured)."""
    points, _, where = load_points(path)
    usable = usable_points(points, cal)
    if not usable:
        raise BadInput(f"{where}: no measured point of {cal.target!r} in environment {cal.env_key}")
    checks = []
    for i, point in enumerate(usable, 1):
        checks.append(point_check(point, cal))
        if progress:
            progress(f"  {i}/{len(usable)} {checks[-1].label}: predicted {checks[-1].predicted_ms:.3g} ms, "
                     f"measured {checks[-1].measured_ms:.3g} ms ({100 * checks[-1].error:+.1f}%)")
    return checks


def correction_summary(correction: NetworkCorrection) -> str:
    """One line: the correction and its leave-one-network-out effect (median absolute errors)."""
    line = (f"network correction: {correction.offset_ms:.3g} ms + {correction.scale:.3f} x kernels, "
            f"fitted on {len(correction.networks)} networks")
    if correction.loo_errors:
        before = statistics.median(abs(e[1]) for e in correction.loo_errors)
        after = statistics.median(abs(e[2]) for e in correction.loo_errors)
        within = sum(abs(e[2]) <= 0.1 for e in correction.loo_errors) / len(correction.loo_errors)
        line += (f"; leave one network out: median error {100 * before:.1f}% -> {100 * after:.1f}%, "
                 f"{100 * within:.0f}% within +-10%")
    return line
