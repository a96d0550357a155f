"""What the profile stage measures: end-to-end latency statistics, the environment they were
measured in, and per-layer rows mapped to ONNX nodes and their predicted counts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from functools import cache


@dataclass(frozen=True)
class TimingSettings:
    warmup_iters: int = 10
    warmup_s: float = 0.2
    min_iters: int = 20
    min_time_s: float = 1.0
    target_ci: float = 0.01          # stop once the 95% CI of the median is within this fraction
    max_time_s: float = 10.0         # cap on timed iterations
    layer_iters: int = 20            # iterations of the separate layer-profiling run
    wait_quiet_s: float = 0.0        # before timing, wait up to this long for other processes to go quiet
    rounds: int = 3                  # a sweep times its points interleaved: quiet rounds each point needs
    control_tolerance: float = 0.10  # a round whose control network ran this much slower than its best is contended
    retry_budget_s: float = 60.0     # seconds of contended rounds (per target) after which no more are run


@dataclass(frozen=True)
class LatencyStats:
    """End-to-end latency of one engine at one shape. A store written by an older scaleprof (or a
    results file from elsewhere) may lack the spread figures: they read back as None."""

    median: float                    # milliseconds per batch
    batch: int
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    p90: float | None = None
    p99: float | None = None
    std: float | None = None
    cv: float | None = None          # std / mean
    ci95: tuple[float, float] | None = None    # 95% confidence interval of the median (ms)
    iterations: int | None = None
    total_s: float | None = None     # wall time spent in timed iterations
    timing_method: str | None = None  # "perf_counter", "cuda-events", ...
    stop_reason: str = ""            # "ci target reached", "minimums reached", "time cap"
    warmup_iters: int = 0            # untimed iterations run first
    contention: dict | None = None   # what other processes took meanwhile (profile.contention.Contention)
    rounds: dict | None = None       # timed in interleaved rounds: kept, discarded, contended, reason
                                     # (profile.rounds.Pooled.provenance); None: timed in one run

    @property
    def contended(self) -> bool:
        """Could not be measured faithfully: in rounds, too few quiet ones (the control network's
        judgement, or other processes busy in every round); in one run, other processes took a
        share of the machine (or the GPU) meanwhile."""
        return point_contended(self.rounds, self.contention)

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch * 1000.0 / self.median

    def to_dict(self) -> dict:
        data = asdict(self)
        data["throughput"] = self.throughput
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyStats":
        """The inverse of to_dict (derived and unknown keys are ignored)."""
        data = {k: v for k, v in data.items() if k in _field_names(cls)}
        if data.get("ci95") is not None:
            data["ci95"] = tuple(data["ci95"])
        return cls(**data)


def point_contended(rounds: dict | None, contention: dict | None) -> bool:
    """Whether a stored timing is contended (LatencyStats.contended from its dicts): the rounds'
    verdict where it was timed in rounds, else the /proc flag of its single run."""
    if rounds is not None:
        return bool(rounds.get("contended"))
    return bool(contention and contention.get("flagged"))


@dataclass(frozen=True)
class Environment:
    """Where a measurement was taken. Measurements are keyed by target name + ``key``."""

    backend: str
    backend_version: str
    device: str                      # "cpu", "cuda:0"
    device_name: str                 # CPU model or GPU name
    threads: int | None
    host: str
    versions: dict = field(default_factory=dict)   # python, torch, onnx, onnxruntime, timm, scaleprof, ...
    clocks: dict = field(default_factory=dict)     # where readable (GPU SM/memory clocks, CPU MHz)

    @property
    def key(self) -> str:
        """Hash of what makes results comparable (not the clocks, which drift)."""
        what = {k: v for k, v in asdict(self).items() if k != "clocks"}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["key"] = self.key
        return data


@dataclass(frozen=True)
class LayerRow:
    name: str                        # engine layer name
    onnx_nodes: tuple[str, ...]      # exported ONNX nodes it executes
    op_type: str                     # engine's layer type
    category: str                    # conv, depthwise conv, SE, activation, pooling, reformat/copy, ...
    time_ms: float                   # median over profiled iterations
    mean_ms: float
    flops: int                       # summed predicted counts of its ONNX nodes (per batch)
    params: int
    acts: int
    opaque: bool = False
    flops_per_s: float | None = None     # achieved
    bytes_per_s: float | None = None
    roofline_ms: float | None = None     # lower bound from the device's peaks
    attainment: float | None = None      # roofline_ms / time_ms
    bound: str | None = None             # "compute" or "memory": which roof is lower for this layer
    bytes: int | None = None             # estimated bytes moved (inputs + outputs + weights), per batch
    status: str = "measured"             # "measured"; "helper" (backend-inserted, e.g. a layout
                                         # reorder: timed, attributed to the nodes it serves, counts 0);
                                         # "not-executed" (constant-folded/eliminated: counts, no time)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["onnx_nodes"] = list(self.onnx_nodes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LayerRow":
        data = {k: v for k, v in data.items() if k in _field_names(cls)}
        return cls(**{**data, "onnx_nodes": tuple(data.get("onnx_nodes") or ())})


@dataclass(frozen=True)
class LayerReport:
    layers: tuple[LayerRow, ...]
    layer_sum_ms: float              # sum of layer medians
    end_to_end_ms: float | None      # the separate end-to-end median, when known
    coverage: float                  # share of layer time attributed to nodes with counts
    profiler: str
    iterations: int
    totals: dict = field(default_factory=dict)       # model totals per batch (flops, params, acts)
    by_category: dict = field(default_factory=dict)  # category -> {time_ms, share, flops, params, acts, layers}
    device_peaks: dict | None = None                 # roofline calibration used (see profile.roofline)
    layer_sum_mean_ms: float | None = None           # sum of layer means: on a busy machine, stalls that
                                                     # the per-layer medians drop show up here
    iteration_ms: float | None = None                # median over profiled iterations of that iteration's
                                                     # summed layer times: what compares with end to end

    @property
    def overhead_ratio(self) -> float | None:
        """Profiled time per iteration / end-to-end median. Uses whole iterations, not the sum of
        per-layer medians, which drops the stalls every iteration of a busy machine has somewhere."""
        profiled = self.iteration_ms or self.layer_sum_ms
        return profiled / self.end_to_end_ms if self.end_to_end_ms else None

    @property
    def executed_layers(self) -> int:
        """Layers the engine ran (its own, after fusion; helpers included, folded-away nodes not)."""
        return sum(1 for row in self.layers if row.status != "not-executed")

    def to_dict(self) -> dict:
        return {
            "layers": [row.to_dict() for row in self.layers],
            "executed_layers": self.executed_layers,
            "layer_sum_ms": self.layer_sum_ms,
            "layer_sum_mean_ms": self.layer_sum_mean_ms,
            "iteration_ms": self.iteration_ms,
            "end_to_end_ms": self.end_to_end_ms,
            "overhead_ratio": self.overhead_ratio,
            "coverage": self.coverage,
            "profiler": self.profiler,
            "iterations": self.iterations,
            "totals": self.totals,
            "by_category": self.by_category,
            "device_peaks": self.device_peaks,
        }

    @classmethod
    def from_dict(cls, summary: dict, layers: list[dict]) -> "LayerReport":
        """The inverse of to_dict, from its summary (to_dict less "layers") and the layer rows."""
        known = {k: v for k, v in summary.items() if k in _field_names(cls)}
        known.setdefault("end_to_end_ms", None)
        return cls(**{**known, "layers": tuple(LayerRow.from_dict(row) for row in layers)})


@dataclass(frozen=True)
class Measurement:
    latency: LatencyStats
    environment: Environment
    layers: LayerReport | None = None

    def to_dict(self) -> dict:
        """The CLI's --json object: latency_ms, throughput, iterations, environment and, with layers,
        layers / layer_sum_ms / coverage (plus overhead_ratio, by_category, totals)."""
        lat = self.latency
        data = {
            "latency_ms": {"median": lat.median, "mean": lat.mean, "min": lat.min, "max": lat.max,
                           "p90": lat.p90, "p99": lat.p99, "std": lat.std, "cv": lat.cv,
                           "ci95": list(lat.ci95)},
            "throughput": lat.throughput,
            "iterations": lat.iterations,
            "batch": lat.batch,
            "total_s": lat.total_s,
            "timing_method": lat.timing_method,
            "stop_reason": lat.stop_reason,
            "contention": lat.contention,
            "rounds": lat.rounds,
            "environment": self.environment.to_dict(),
        }
        if self.layers is not None:
            data.update(self.layers.to_dict())
        return data


@cache
def _field_names(cls) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))
