"""PointResult's flat form: what results.json rows carry back (predict calibrates from them too)."""

from __future__ import annotations

from scaleprof.profile.types import LatencyStats
from scaleprof.report.tables import result_row
from scaleprof.sweep.result import PointResult


def _point(latency: LatencyStats) -> PointResult:
    return PointResult(point_key="k", target="cpu-ort", env_key="e", status="ok", model="efficientnet_b0",
                       strategy="w", alpha=None, scale=2.0, resolution=224, batch=1, precision="fp32", backend="ort",
                       device="cpu", flops=10, params=2, acts=5, latency=latency)


def test_a_results_json_row_reads_back_as_the_point_it_was_written_from():
    rounds = {"kept": 2, "discarded": 3, "contended": True, "reason": "control slower"}
    for latency in (LatencyStats(median=4.0, batch=1, ci95=(3.9, 4.1), cv=0.02, iterations=30, rounds=rounds),
                    LatencyStats(median=4.0, batch=1, contention={"flagged": True, "other_cores": 1.5}),
                    LatencyStats(median=4.0, batch=1, contention={"flagged": False})):
        point = _point(latency)
        back = PointResult.from_flat(result_row(point))
        assert back.latency_ms == 4.0 and back.flops == 10 and back.strategy == "w"
        assert back.contended == point.contended          # calibrate leaves contended rows out of either source
    assert PointResult.from_flat(result_row(_point(LatencyStats(median=4.0, batch=1)))).contention is None
