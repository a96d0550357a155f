"""Synthetic results stores with known answers, for the analysis and report tests."""

from __future__ import annotations

import math
import random

from scaleprof.report.analysis import expected_exponents
from scaleprof.profile.types import LatencyStats, LayerReport
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.store import Store

BASE = {"flops": 390_000_000, "params": 5_300_000, "acts": 6_700_000}     # roughly EfficientNet-B0


def synthetic_rows(strategies=("d", "w", "r", "dwr"), scales=(1, 2, 4), target="cpu-ort",
                   a_ms_per_mact=1.5, b_ms=2.0, batches=(1,), model="efficientnet_b0", noise=0.0, seed=0):
    """Points whose counts grow exactly as docs/conventions.md#growth-exponents says and whose latency is a*acts + b."""
    rng = random.Random(seed)
    rows = []
    for strategy in strategies:
        alpha = 0.8 if strategy == "dWr" else None
        e = expected_exponents(strategy, alpha)
        for s in scales:
            for batch in batches:
                counts = {k: int(round(BASE[k] * s ** e[k])) for k in BASE}
                latency = (a_ms_per_mact * counts["acts"] * batch / 1e6 + b_ms) * (1 + noise * rng.uniform(-1, 1))
                rows.append({"model": model, "strategy": strategy, "alpha": alpha, "scale": float(s),
                             "resolution": int(224 * s ** (0.5 if strategy == "r" else 0)), "batch": batch,
                             "precision": "fp32", "target": target, **counts,
                             "latency_ms_median": latency, "throughput": batch * 1000 / latency})
    return rows


def points(rows) -> list[PointResult]:
    """Flat rows (results.json's form) as the measured points the analysis reads."""
    return [PointResult.from_flat(r) for r in rows]


def layers_for(row, n=12):
    """Per-layer rows whose times sum to 1.1 x the latency (a profiler's overhead)."""
    cats = ["conv", "depthwise conv", "SE", "activation", "pooling"]
    out = []
    for i in range(n):
        share = (i + 1) / (n * (n + 1) / 2)
        out.append({"name": f"/blocks/blocks.{i}/conv<{i}>", "onnx_nodes": [f"/blocks/blocks.{i}/Conv"],
                    "op_type": "FusedConv" if i % 2 else "Conv", "category": cats[i % len(cats)],
                    "time_ms": 1.1 * row["latency_ms_median"] * share, "mean_ms": 1.1 * row["latency_ms_median"] * share,
                    "flops": int(row["flops"] * row["batch"] * share), "params": int(row["params"] * share),
                    "acts": int(row["acts"] * row["batch"] * share)})
    return out


def fill_store(directory, rows, layers=True, env_key="env0", failures=()):
    with Store(directory) as store:
        sweep = store.begin_sweep("synthetic", {"name": "synthetic", "budget_ms": [],
                                                "convention": "pycls: flops = multiply-adds (synthetic)"})
        for target in sorted({r["target"] for r in rows}):
            store.put_environment(env_key, {"name": target, "backend": "ort", "device": "cpu"},
                                  {"backend": "ort", "backend_version": "1.0", "device": "cpu",
                                   "device_name": "Synthetic CPU", "threads": 2, "host": "test",
                                   "versions": {"python": "3"}, "clocks": {}})
        for r in rows:
            lat = r["latency_ms_median"]
            rec = PointResult(
                point_key=f"{r['model']}|{r['strategy']}|{r['alpha']}|{r['scale']:g}|auto|b{r['batch']}|fp32",
                target=r["target"], env_key=env_key, status="ok", model=r["model"], strategy=r["strategy"],
                alpha=r["alpha"], scale=r["scale"], resolution=r["resolution"], batch=r["batch"],
                precision=r["precision"], backend="ort", device="cpu",
                spec={"model": r["model"], "depth_multiplier": 1.0, "width_multiplier": 1.0, "flops_ratio": r["scale"]},
                flops=r["flops"], params=r["params"], acts=r["acts"], engine_key="e" * 16,
                latency=LatencyStats(median=lat, mean=lat, min=lat, max=lat, p90=lat, p99=lat, std=0.0, cv=0.0,
                                     ci95=(lat * 0.99, lat * 1.01), iterations=20, total_s=1.0, batch=r["batch"],
                                     timing_method="perf_counter"),
                layers=LayerReport.from_dict({"layer_sum_ms": 1.1 * lat, "end_to_end_ms": lat, "coverage": 1.0,
                                              "profiler": "onnxruntime", "iterations": 20},
                                             layers_for(r)) if layers else None)
            store.put_point(rec, sweep)
        for f in failures:
            store.put_point(PointResult(point_key=f"fail|{f}", target=rows[0]["target"], env_key=env_key,
                                        status="failed", model=f, strategy="d", alpha=None, scale=2.0,
                                        resolution=None, batch=1, precision="fp32", backend="ort", device="cpu",
                                        error=f"export failed for {f}"), sweep)
        store.end_sweep(sweep)
