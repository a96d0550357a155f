"""``PointResult``: one point of a sweep, from the moment it is measured to the report.

The runner builds it from the stages' typed answers (``LatencyStats``, ``LayerReport``), the store
writes it and reads it back, predict and report read its attributes. ``flat()`` is its one flat
form: the store's scalar columns, and the first columns of results.csv / results.json, whose rows
``from_flat`` reads back (predict calibrates from either).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scaleprof.engines.int8_flavour import precision_label
from scaleprof.profile.types import LatencyStats, LayerReport

LATENCY_MS = "latency_ms_median"       # the flat name of the median latency, per batch
METRIC_FIELDS = {"flops": "flops", "params": "params", "acts": "acts", "layers": "layer_count"}
PER_BATCH = ("flops", "acts")          # the metrics whose work grows with the batch


@dataclass(frozen=True)
class PointResult:
    """Everything known of one point (stored in one transaction)."""

    point_key: str
    target: str
    env_key: str
    status: str                       # "ok" or "failed"
    model: str
    strategy: str
    alpha: float | None
    scale: float
    resolution: int | None            # the resolution measured (None only for failures before it is known)
    batch: int
    precision: str
    backend: str
    device: str
    flavour: str | None = None        # int8: the file's activation type; None for other precisions and old rows
    resolution_requested: str = "auto"   # "auto" (the strategy's choice) or the configured size
    spec: dict | None = None          # ModelSpec.to_dict()
    flops: int | None = None          # per image
    params: int | None = None
    acts: int | None = None
    layer_count: int | None = None    # layers executed per inference (conv, linear, elementwise, other)
    engine_key: str | None = None
    latency: LatencyStats | None = None
    layers: LayerReport | None = None
    stage_seconds: dict = field(default_factory=dict)  # count/export/build/profile/store seconds
    error: str | None = None
    row_id: int | None = None         # the store's row id, once stored

    # ------------------------------------------------------------------ derived
    @property
    def precision_label(self) -> str:
        """The precision with its flavour ("int8(act=uint8)"), as reports group and name points."""
        return precision_label(self.precision, self.flavour)

    @property
    def latency_ms(self) -> float | None:
        """Median milliseconds per batch (None for a failed point)."""
        return self.latency.median if self.latency else None

    @property
    def throughput(self) -> float | None:
        return self.latency.throughput if self.latency else None

    @property
    def contention(self) -> dict | None:
        return self.latency.contention if self.latency else None

    @property
    def contended(self) -> bool:
        return bool(self.latency and self.latency.contended)

    @property
    def layer_rows(self) -> tuple:
        return self.layers.layers if self.layers else ()

    def metric(self, name: str) -> float | None:
        """The work a batch does by ``name`` (flops, params, acts, layers): flops and acts per image x
        batch; params and layers once. None where unknown (layers of a point stored before they were
        counted)."""
        value = getattr(self, METRIC_FIELDS[name])
        if value is None:
            return None
        return float(value) * self.batch if name in PER_BATCH else float(value)

    # ------------------------------------------------------------------ the flat form
    def flat(self) -> dict:
        """The scalar fields by their column names (the store's, and results.csv's first ones)."""
        return {
            "point_key": self.point_key, "target": self.target, "env_key": self.env_key, "status": self.status,
            "model": self.model, "strategy": self.strategy, "alpha": self.alpha, "scale": self.scale,
            "resolution": self.resolution, "resolution_requested": self.resolution_requested,
            "batch": self.batch, "precision": self.precision, "flavour": self.flavour, "backend": self.backend,
            "device": self.device,
            "flops": self.flops, "params": self.params, "acts": self.acts, "layer_count": self.layer_count,
            "engine_key": self.engine_key, LATENCY_MS: self.latency_ms, "throughput": self.throughput,
            "error": self.error,
        }

    @classmethod
    def from_flat(cls, row: dict, *, latency: LatencyStats | None = None, layers: LayerReport | None = None,
                  spec: dict | None = None, stage_seconds: dict | None = None,
                  row_id: int | None = None) -> "PointResult":
        """A result from its flat form; a row without ``latency`` gets one from its flat latency
        columns (a results.json row)."""
        if latency is None and row.get(LATENCY_MS) is not None:
            latency = _latency_from_columns(row)
        return cls(
            point_key=str(row.get("point_key") or ""), target=str(row["target"]), env_key=str(row.get("env_key") or ""),
            status=str(row.get("status") or "ok"), model=str(row["model"]), strategy=str(row.get("strategy") or "none"),
            alpha=row.get("alpha"), scale=row["scale"], resolution=row.get("resolution"), batch=row["batch"],
            precision=str(row.get("precision") or "fp32"), flavour=str(row["flavour"]) if row.get("flavour") else None,
            backend=str(row.get("backend") or ""),
            device=str(row.get("device") or ""), resolution_requested=str(row.get("resolution_requested") or "auto"),
            spec=spec, flops=row.get("flops"), params=row.get("params"), acts=row.get("acts"),
            layer_count=row.get("layer_count"), engine_key=row.get("engine_key"), latency=latency, layers=layers,
            stage_seconds=stage_seconds or {}, error=row.get("error"), row_id=row_id)


def _latency_from_columns(row: dict) -> LatencyStats:
    """A results.csv / results.json row's latency columns (report.tables) as LatencyStats, with how
    it was timed (rounds kept and discarded, contended or not) where the row says."""
    low, high = row.get("latency_ci95_low"), row.get("latency_ci95_high")
    contended = row.get("contended")
    rounds = None
    if row.get("rounds_kept") is not None:
        rounds = {"kept": row["rounds_kept"], "discarded": row.get("rounds_discarded"),
                  "contended": bool(contended), "reason": row.get("contended_why")}
    return LatencyStats(median=float(row[LATENCY_MS]), batch=int(row["batch"]), mean=row.get("latency_ms_mean"),
                        p90=row.get("latency_ms_p90"), p99=row.get("latency_ms_p99"), cv=row.get("latency_cv"),
                        ci95=(low, high) if low is not None and high is not None else None,
                        iterations=row.get("iterations"), rounds=rounds,
                        contention={"flagged": bool(contended)} if contended is not None and rounds is None else None)
