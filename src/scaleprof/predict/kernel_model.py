"""The kernel model: one kernel's time from its features, fitted to timed kernels of the same key.

Per key (kind and implementation, onnx_kernels.Kernel.key) a roofline-like baseline

    t = per_call + per_mac * macs + per_byte * bytes        (non-negative, relative-error fit)

is corrected by the timed kernels nearest in shape (k nearest neighbours in log channels, log
positions, kernel size, stride, groups, batch and fusions, distance-weighted mean of their log
residuals): the baseline carries the trend beyond what was timed, the neighbours the efficiency of
the shapes that were. Each key's error is its leave-one-out error on its own timings; a kernel far
from every timed one (or of a key nothing timed) is flagged, never silently answered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaleprof.predict.group_model import nnls_relative

NEIGHBOURS = 4
FAR = 2.5                      # distance (in log2 units) beyond which a kernel is "far from what was timed"
MAX_PROFILER_MS = 0.003        # the most the profiler can add to one kernel (a noisy fit says more)
MIN_ROWS = 3                   # timed kernels a key needs before it is covered


def feature_vector(k) -> list[float]:
    """Where a kernel lies among timed ones (log2 of sizes; small integers as they are)."""
    def lg(v):
        return math.log2(max(float(v), 1.0))

    return [lg(k.channels_in), lg(k.channels_out), lg(k.size_out), 0.5 * k.kernel, 0.7 * k.stride,
            0.5 * lg(k.groups), lg(k.batch), 0.7 * ("Add" in k.fused), 0.5 * (len(k.fused) > ("Add" in k.fused)),
            0.5 * lg(k.size_in)]


def _baseline_terms(k) -> list[float]:
    return [1.0, float(k.flops), float(k.bytes_read + k.bytes_written)]


@dataclass(frozen=True)
class KeyModel:
    """The fit of one key: baseline coefficients, the timed kernels' features and log residuals."""

    coefficients: tuple
    points: tuple                 # feature vectors
    residuals: tuple              # log(measured / baseline)
    error: float                  # median absolute leave-one-out relative error

    def baseline(self, k) -> float:
        return max(sum(c * t for c, t in zip(self.coefficients, _baseline_terms(k))), 1e-6)

    def correction(self, vector, skip: int | None = None) -> tuple[float, float]:
        """(log correction, distance to the nearest timed kernel)."""
        distances = sorted((math.dist(vector, p), i) for i, p in enumerate(self.points) if i != skip)
        if not distances:
            return 0.0, math.inf
        near = distances[:NEIGHBOURS]
        weights = [1.0 / (d + 0.25) ** 2 for d, _ in near]
        value = sum(w * self.residuals[i] for w, (_, i) in zip(weights, near)) / sum(weights)
        return value, near[0][0]

    def predict(self, k) -> tuple[float, float]:
        """(ms, distance to the nearest timed kernel)."""
        correction, distance = self.correction(feature_vector(k))
        return self.baseline(k) * math.exp(correction), distance

    def to_dict(self) -> dict:
        return {"coefficients": list(self.coefficients), "points": [list(p) for p in self.points],
                "residuals": list(self.residuals), "error": self.error}

    @classmethod
    def from_dict(cls, data: dict) -> "KeyModel":
        return cls(tuple(float(c) for c in data["coefficients"]), tuple(tuple(map(float, p)) for p in data["points"]),
                   tuple(float(r) for r in data["residuals"]), float(data["error"]))


def fit_key(kernels, times) -> KeyModel:
    """A KeyModel from timed kernels of one key (times in ms)."""
    coefficients = tuple(nnls_relative([_baseline_terms(k) for k in kernels], list(times)))
    model = KeyModel(coefficients, (), (), 0.0)
    points = tuple(tuple(feature_vector(k)) for k in kernels)
    residuals = tuple(math.log(max(t, 1e-6) / model.baseline(k)) for k, t in zip(kernels, times))
    model = KeyModel(coefficients, points, residuals, 0.0)
    errors = sorted(abs(math.exp(r - model.correction(p, skip=i)[0]) - 1.0)
                    for i, (p, r) in enumerate(zip(points, residuals)))
    error = errors[len(errors) // 2] if errors else 1.0
    return KeyModel(coefficients, points, residuals, error)


@dataclass(frozen=True)
class KernelEstimate:
    kernel: object                # onnx_kernels.Kernel
    ms: float
    error: float                  # the relative error expected of it
    covered: bool = True          # its key was timed
    far: bool = False             # its shape is far from every timed kernel of its key


@dataclass(frozen=True)
class KernelModel:
    """Every key's model plus the run's own cost: per_run + per_kernel x executed kernels."""

    keys: dict = field(default_factory=dict)         # key -> KeyModel
    per_run_ms: float = 0.0
    per_kernel_ms: float = 0.0

    def estimate(self, k) -> KernelEstimate:
        if k.kind == "view":
            return KernelEstimate(k, 0.0, 0.0)
        model = self.keys.get(k.key)
        if model is not None:
            ms, distance = model.predict(k)
            far = distance > FAR
            return KernelEstimate(k, ms, model.error * (1 + (distance - FAR if far else 0)), True, far)
        fallback = self.fallback(k)
        return KernelEstimate(k, fallback.baseline(k) if fallback else 0.0, 1.0, False, True)

    def fallback(self, k) -> KeyModel | None:
        """For an uncovered key: the model of another implementation of its kind, else of any kind."""
        same_kind = [m for key, m in sorted(self.keys.items()) if key.split("/")[0] == k.kind]
        pool = same_kind or [m for _, m in sorted(self.keys.items())]
        return max(pool, key=lambda m: len(m.points)) if pool else None

    def overhead_ms(self, kernels) -> float:
        """What the run adds to (or, with the profiler's own cost taken back, removes from) its kernels."""
        return self.per_run_ms + self.per_kernel_ms * sum(1 for k in kernels if k.kind != "view")

    def to_dict(self) -> dict:
        return {"keys": {k: m.to_dict() for k, m in sorted(self.keys.items())}, "per_run_ms": self.per_run_ms,
                "per_kernel_ms": self.per_kernel_ms}

    @classmethod
    def from_dict(cls, data: dict) -> "KernelModel":
        return cls({k: KeyModel.from_dict(v) for k, v in data["keys"].items()}, float(data["per_run_ms"]),
                   float(data["per_kernel_ms"]))


def fit_kernels(rows, runs) -> KernelModel:
    """A KernelModel from timed kernels (``rows``: (Kernel, ms)) and timed runs (``runs``: (executed
    kernels, run ms, sum of their kernel ms)), the latter giving the run's own cost."""
    by_key: dict[str, list] = {}
    for kernel, ms in rows:
        if kernel.kind != "view" and ms > 0:
            by_key.setdefault(kernel.key, []).append((kernel, ms))
    keys = {key: fit_key([k for k, _ in pairs], [t for _, t in pairs])
            for key, pairs in by_key.items() if len(pairs) >= MIN_ROWS}
    per_run, per_kernel = run_cost(runs)
    return KernelModel(keys, per_run, per_kernel)


def run_cost(runs) -> tuple[float, float]:
    """(per run, per kernel) ms that a run adds to its kernels' profiled times, least squares in relative
    terms. The per-kernel term is negative where the profiler adds more to each kernel than the run does."""
    import numpy as np

    usable = [(c, run, summed) for c, run, summed in runs if run and run > 0 and c > 0]
    if len(usable) < 3:
        return 0.0, 0.0
    rows = np.array([[1.0 / run, c / run] for c, run, _ in usable])
    gaps = np.array([(run - summed) / run for _, run, summed in usable])
    (per_run, per_kernel), *_ = np.linalg.lstsq(rows, gaps, rcond=None)
    return max(float(per_run), 0.0), max(float(per_kernel), -MAX_PROFILER_MS)
