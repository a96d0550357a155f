"""`scaleprof ingest` reports trtexec's per-layer times as the profile stage's LayerReport
(profile.trace_report), categorised from the ONNX file where it is given."""

from __future__ import annotations

import pytest
from tests.engines.tensorrt_fixtures import FIXTURES, SE_NODES, toy_onnx

from scaleprof.profile.types import LayerReport
from scaleprof.tools import ingest

FILES = [str(FIXTURES / f"efficientnet_toy.{k}.json") for k in ("profile", "times", "trt10.graph")]


def test_ingest_layers_read_back_as_the_profile_stages_layer_report(tmp_path):
    out = ingest.ingest(FILES, onnx=str(toy_onnx(tmp_path / "toy.onnx")))
    summary = {k: v for k, v in out["layers"].items() if k != "rows"}
    report = LayerReport.from_dict(summary, out["layers"]["rows"])
    assert len(report.layers) == out["layers"]["count"] == 7
    assert report.layer_sum_ms == pytest.approx(sum(row.time_ms for row in report.layers))
    assert report.overhead_ratio == pytest.approx(report.layer_sum_ms / out["latency"]["median"])
    mapped = sum(row.time_ms for row in report.layers if row.onnx_nodes)
    assert report.coverage == pytest.approx(mapped / report.layer_sum_ms)
    assert 0.9 < report.coverage < 1.0                          # one layer (a reformat) maps to no node
    se = next(row for row in report.layers if set(row.onnx_nodes) == set(SE_NODES))
    assert se.category == "activation" and se.opaque       # the toy file's operators are all Relu stand-ins
    mapped_rows = [row for row in report.layers if row.onnx_nodes]
    assert {row.category for row in mapped_rows} == {"activation"}
    assert report.by_category["activation"]["time_ms"] == pytest.approx(mapped)


def test_without_the_onnx_file_layers_are_uncategorised_but_still_mapped():
    layers = ingest.ingest(FILES)["layers"]
    assert {row["category"] for row in layers["rows"]} <= {"other", "reformat/copy"}
    assert layers["coverage"] > 0.9
