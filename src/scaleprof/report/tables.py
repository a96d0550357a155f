"""results.csv and results.json: the measured points as tables, one row per point.

Columns that mean the same as in timm's benchmark CSVs carry timm's names (timm's
benchmark.py: ``infer_samples_per_sec``, ``infer_step_time`` (ms per batch step),
``infer_batch_size``, ``infer_img_size``, ``param_count`` (millions), ``infer_gmacs``
(GMACs per image), ``infer_macts`` (activations per image, millions)), so a scaleprof CSV can
be merged with timm's tables. scaleprof's own columns keep exact integers: ``flops`` (multiply-adds
per image), ``params``, ``acts`` (per image), pycls conventions (docs/conventions.md#counting), and ``layer_count``
(layers executed per inference, from the counts) and, where the layers were profiled,
``engine_layers`` (the layers the engine itself ran, after its fusions). ``contended`` says whether
the point could not be measured faithfully (LatencyStats.contended; ``contended_why`` says why),
``rounds_kept`` / ``rounds_discarded`` how its latency was obtained (quiet rounds pooled, contended
ones set aside; empty for a point timed in one run) and ``other_cores`` how many cores other
processes kept busy meanwhile; ``flavour`` the activation type of an int8 point's file (uint8 or
int8, scaleprof.engines.int8_flavour); all are empty for points stored before scaleprof recorded them.
"""

from __future__ import annotations

import csv
import io
import json
import math

from scaleprof.core.onnx_file import ELEMENT_BYTES
from scaleprof.sweep.result import LATENCY_MS, PointResult


COLUMNS = (
    "model", "strategy", "alpha", "scale", "resolution", "batch", "precision", "flavour", "target",
    "backend", "device", "flops", "params", "acts", "layer_count", "engine_layers",
    LATENCY_MS, "latency_ms_mean", "latency_ms_p90", "latency_ms_p99", "latency_cv",
    "latency_ci95_low", "latency_ci95_high", "iterations", "throughput",
    "infer_samples_per_sec", "infer_step_time", "infer_batch_size", "infer_img_size",
    "param_count", "infer_gmacs", "infer_macts",
    "depth_multiplier", "width_multiplier", "flops_ratio", "resolution_requested",
    "layer_sum_ms", "layer_coverage", "engine_key", "env_key", "contended", "other_cores",
    "rounds_kept", "rounds_discarded", "contended_why",
    "act_bytes",                # the batch's activations at the precision's bytes per element
)


def result_row(point: PointResult) -> dict:
    """One measured point -> one flat row of results.csv / results.json: its flat form
    (PointResult.flat, the store's columns) and the columns derived from it."""
    flat = point.flat()
    lat = point.latency
    spec = point.spec or {}
    layers = point.layers
    ci = lat.ci95 or (None, None)
    contention = point.contention or {}
    rounds = lat.rounds or {}
    derived = {
        "engine_layers": layers.executed_layers if layers else None,
        "latency_ms_mean": lat.mean, "latency_ms_p90": lat.p90, "latency_ms_p99": lat.p99, "latency_cv": lat.cv,
        "latency_ci95_low": ci[0], "latency_ci95_high": ci[1], "iterations": lat.iterations,
        "infer_samples_per_sec": _round(point.throughput, 2),
        "infer_step_time": _round(point.latency_ms, 3),
        "infer_batch_size": point.batch,
        "infer_img_size": point.resolution,
        "param_count": _round(point.params / 1e6, 2) if point.params is not None else None,
        "infer_gmacs": _round(point.flops / 1e9, 4) if point.flops is not None else None,
        "infer_macts": _round(point.acts / 1e6, 3) if point.acts is not None else None,
        "depth_multiplier": spec.get("depth_multiplier"), "width_multiplier": spec.get("width_multiplier"),
        "flops_ratio": spec.get("flops_ratio"),
        "layer_sum_ms": layers.layer_sum_ms if layers else None, "layer_coverage": layers.coverage if layers else None,
        "contended": lat.contended if (lat.rounds or contention) else None,
        "other_cores": _round(contention.get("other_cores"), 3),
        "rounds_kept": rounds.get("kept"), "rounds_discarded": rounds.get("discarded"),
        "contended_why": rounds.get("reason") or ("flagged in one run" if lat.contended and not lat.rounds else None),
        "act_bytes": activation_bytes(point),
    }
    return {k: derived[k] if k in derived else flat[k] for k in COLUMNS}


def activation_bytes(point: PointResult) -> int | None:
    """The batch's activations in bytes at the point's precision (acts x batch x bytes per element:
    fp32 4, fp16 2, int8 and fp8 1); None when acts are unknown."""
    if point.acts is None:
        return None
    return int(point.acts) * point.batch * ELEMENT_BYTES.get(point.precision, 4)


def _round(value, digits):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    return buf.getvalue()


FAILURE_COLUMNS = ("model", "strategy", "alpha", "scale", "batch", "precision", "target", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A CSV cell: text a spreadsheet would run as a formula (a name starting with '=', '+', '-', '@')
    is quoted with a leading apostrophe; numbers, and all other text, are written as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_json(rows: list[dict], environments: list[dict], failures: list[PointResult], convention: str) -> str:
    return json.dumps({
        "convention": convention,
        "latency": "milliseconds per batch (median over timed iterations); throughput in images/s",
        "points": rows,
        "failures": [{k: f.flat()[k] for k in FAILURE_COLUMNS} for f in failures],
        "environments": environments,
    }, indent=2, sort_keys=False, default=str)
