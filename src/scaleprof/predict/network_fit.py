"""A calibration: the latency model of one target in one environment, fitted per precision and batch,
with its error band and the region of configurations it saw, saved as a versioned JSON file.

The error band of a fit is its leave-one-network-out error on its own calibration points (at least
the measurements' own noise); outside the calibrated region (flops, acts, layers, resolution, batch)
a prediction is flagged as an extrapolation and its band widens with the distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaleprof.errors import BadInput
from scaleprof.models import family_of
from scaleprof.predict.features import NetworkFeatures
from scaleprof.predict.group_model import LatencyModel, fit
from scaleprof.predict.samples import distinct

MIN_POINTS = 4                     # distinct networks a fit needs
NOISE_FLOOR = 0.02                 # no band narrower than +-2%
RANGE_SLACK = 0.05                 # within 5% of the calibrated range is not an extrapolation
RANGE_KEYS = ("flops", "acts", "layers", "resolution")


def _feature_value(features: NetworkFeatures, key: str) -> float:
    return float(features.layers if key == "layers" else getattr(features, key))


@dataclass(frozen=True)
class Prediction:
    latency_ms: float
    low_ms: float
    high_ms: float
    extrapolation: tuple = ()      # one phrase per way the query leaves the calibrated region
    batch_fit: str = ""            # which fit answered ("batch 1", "all batches")

    def to_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "interval_ms": [self.low_ms, self.high_ms],
                "extrapolation": list(self.extrapolation), "fit": self.batch_fit}


@dataclass(frozen=True)
class BatchFit:
    """The model fitted to one precision (and one batch, or all), its band and calibrated region."""

    model: LatencyModel
    band: float                                      # relative half-width of the interval
    ranges: dict = field(default_factory=dict)       # key -> [min, max]
    batches: tuple = ()
    networks: int = 0

    def extrapolation(self, features: NetworkFeatures, batch: int) -> tuple[tuple, float]:
        """(phrases, how far outside in factors of two) for a query."""
        notes, excess = [], 0.0
        for key in RANGE_KEYS:
            low, high = self.ranges.get(key, (None, None))
            value = _feature_value(features, key)
            if low is None or not value:
                continue
            if value > high * (1 + RANGE_SLACK):
                notes.append(f"{key} {value:.4g} is {value / high:.2g}x the largest calibrated ({high:.4g})")
                excess = max(excess, math.log2(value / high))
            elif value < low * (1 - RANGE_SLACK):
                notes.append(f"{key} {value:.4g} is below the smallest calibrated ({low:.4g})")
                excess = max(excess, math.log2(low / value))
        if self.batches and batch not in self.batches:
            notes.append(f"batch {batch} was not calibrated (calibrated: {', '.join(map(str, self.batches))})")
            excess = max(excess, min(abs(math.log2(batch / b)) for b in self.batches) / 2)
        return tuple(notes), excess

    def predict(self, features: NetworkFeatures, batch: int, precision: str = "fp32") -> tuple:
        """(ms, (low, high), extrapolation phrases)."""
        ms = self.model.predict(features, batch, precision)
        notes, excess = self.extrapolation(features, batch)
        band = self.band * (1 + excess)
        return ms, (ms / (1 + band), ms * (1 + band)), notes

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "band": self.band, "ranges": self.ranges,
                "batches": list(self.batches), "networks": self.networks}

    @classmethod
    def from_dict(cls, data: dict) -> "BatchFit":
        band = data["band"]
        if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 <= band < math.inf:
            raise ValueError(f"band {str(band)[:40]!r} is not a finite non-negative number")
        return cls(model=LatencyModel.from_dict(data["model"]), band=float(band),
                   ranges={k: [float(v[0]), float(v[1])] for k, v in data["ranges"].items()},
                   batches=tuple(int(b) for b in data["batches"]), networks=int(data["networks"]))


def _noise(samples) -> float:
    widths = sorted((s.ci95[1] - s.ci95[0]) / 2 / s.latency_ms for s in samples if len(s.ci95) == 2 and s.latency_ms)
    return widths[len(widths) // 2] if widths else 0.0


def leave_one_out_errors(samples, use_layers: bool = True) -> list[float]:
    """Relative error of each network predicted by a fit to the others."""
    pool = distinct(samples)
    errors = []
    for i, held in enumerate(pool):
        rest = pool[:i] + pool[i + 1:]
        if len(rest) >= 2:
            model = fit(rest, use_layers)
            errors.append(model.predict(held.features, held.batch, held.precision) / held.latency_ms - 1.0)
    return errors


def fit_batch(samples, use_layers: bool = True) -> BatchFit:
    """Fit one group of samples (one precision; one batch or several) with its band and region."""
    pool = distinct(samples)
    model = fit(pool, use_layers)
    errors = sorted(abs(e) for e in leave_one_out_errors(pool, use_layers))
    quantile = errors[min(len(errors) - 1, int(math.ceil(0.9 * len(errors))) - 1)] if errors else 0.5
    band = max(quantile, 2 * _noise(pool), NOISE_FLOOR)
    ranges = {key: [min(_feature_value(s.features, key) for s in pool),
                    max(_feature_value(s.features, key) for s in pool)] for key in RANGE_KEYS}
    return BatchFit(model=model, band=band, ranges=ranges, batches=tuple(sorted({s.batch for s in pool})),
                    networks=len(pool))


def fit_key(precision: str, batch: int | None) -> str:
    return f"{precision} b{batch}" if batch is not None else f"{precision} all batches"


@dataclass(frozen=True)
class Calibration:
    """The latency model of one target in one environment (see calibration_store.py for its file)."""

    target: str
    env_key: str
    fits: dict                                        # fit_key -> BatchFit
    environment: dict = field(default_factory=dict)   # as the results store recorded it
    target_config: dict = field(default_factory=dict)  # name, backend, device, threads, options
    families: tuple = ()
    models: tuple = ()
    points: tuple = ()                                # what it was fitted to: label, batch, latency
    evaluation: tuple = ()                            # Evaluation.to_dict() per precision and batch
    source: str = ""
    created: float = 0.0

    def fit_for(self, precision: str, batch: int) -> tuple[BatchFit, str]:
        for key in (fit_key(precision, batch), fit_key(precision, None)):
            if key in self.fits:
                return self.fits[key], key
        known = sorted({k.split()[0] for k in self.fits})
        raise BadInput(f"target {self.target!r} was calibrated at precision {', '.join(known)}, not {precision}")

    def check(self, model: str, precision: str, batch: int) -> None:
        """BadInput for a model family or precision this calibration never saw."""
        family = family_of(model).name
        if family not in self.families:
            raise BadInput(f"{model} is a {family} network; the calibration of {self.target!r} saw only "
                           f"{', '.join(self.families)} ({', '.join(self.models)}): calibrate with a sweep of it")
        self.fit_for(precision, batch)

    def predict(self, features: NetworkFeatures, batch: int, precision: str, model: str) -> Prediction:
        self.check(model, precision, batch)
        batch_fit, key = self.fit_for(precision, batch)
        ms, (low, high), notes = batch_fit.predict(features, batch, precision)
        if model not in self.models:
            notes = (f"{model} was not measured (calibrated on {', '.join(self.models)})",) + tuple(notes)
        return Prediction(ms, low, high, tuple(notes), key)

    @property
    def device_name(self) -> str:
        return str(self.environment.get("device_name") or self.target_config.get("device") or "?")
