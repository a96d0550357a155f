"""TensorRT per-layer times without TensorRT: IProfiler reports per iteration and trtexec's
--exportProfile JSON, written and read (tests/fixtures/tensorrt/README.md)."""

from __future__ import annotations

import json

import pytest
from tests.engines.tensorrt_fixtures import FIXTURES, HEAD, NODE_ORDER, SE, SE_NODES, STEM

from scaleprof.engines.tensorrt.origins import InspectorLayerMap
from scaleprof.engines.tensorrt.profiler import (LayerTimes, parse_profile, profile_records, profile_trace,
                                                    write_profile)
from scaleprof.errors import BadInput


# --- per-layer times -----------------------------------------------------------------------

def test_layer_times_per_iteration_with_warmup_and_loops(trt10):
    times = LayerTimes()
    for it in range(4):                       # iteration 0 is warm-up
        times.next_iteration()
        times.report(STEM, 1.0 + it)
        times.report(SE, 0.5)
        times.report(SE, 0.25)                # reported twice in one iteration: summed
    trace = times.trace(InspectorLayerMap(trt10, NODE_ORDER), skip=1)
    assert trace.iterations == 3 and trace.profiler == "tensorrt.IProfiler"
    stem, se = trace.events
    assert stem.times_ms == (2.0, 3.0, 4.0)
    assert stem.op_type == "CaskConvolution"
    assert stem.onnx_nodes == ("/conv_stem/Conv", "/act1/Sigmoid", "/act1/Mul") and not stem.opaque
    assert se.times_ms == (0.75, 0.75, 0.75) and se.opaque and set(se.onnx_nodes) == set(SE_NODES)


def test_profile_json_round_trip_in_trtexec_format(tmp_path):
    times = LayerTimes()
    for t in (1.0, 3.0, 2.0):
        times.next_iteration()
        times.report("a", t)
        times.report("b", 1.0)
    trace = times.trace()
    records = profile_records(trace)
    assert records[0] == {"count": 3}
    assert records[1] == {"name": "a", "timeMs": 6.0, "averageMs": 2.0, "medianMs": 2.0, "percentage": 66.66666666666666}
    path = write_profile(trace, tmp_path / "engine.plan.profile.json")
    count, parsed = parse_profile(path.read_text())
    assert count == 3 and [r.name for r in parsed] == ["a", "b"]
    assert parsed[0].median_ms == 2.0 and parsed[1].total_ms == 3.0


def test_trtexec_profile_fixture_becomes_a_trace(trt10):
    text = (FIXTURES / "efficientnet_toy.profile.json").read_text()
    count, records = parse_profile(text)
    assert count == 20 and len(records) == 7
    assert abs(sum(r.percentage for r in records) - 100.0) < 1e-3
    trace = profile_trace(text, InspectorLayerMap(trt10, NODE_ORDER))
    assert trace.iterations == 20 and trace.profiler == "trtexec"
    by_name = {e.name: e for e in trace.events}
    assert by_name[STEM].times_ms == (records[1].median_ms,) * 20
    assert by_name[SE].opaque and by_name[HEAD].onnx_nodes == ("/Flatten", "/classifier/Gemm")


def test_profile_without_median_and_with_raw_control_characters():
    raw = '[{ "count" : 2 }, { "name" : "a\x1fb", "timeMs" : 4, "averageMs" : 2, "percentage" : 100 }]'
    count, records = parse_profile(raw)
    assert count == 2 and records[0].name == "a\x1fb" and records[0].median_ms is None
    assert profile_trace(raw).events[0].times_ms == (2.0, 2.0)         # the average stands in


def test_profile_json_errors():
    with pytest.raises(BadInput, match="count"):
        parse_profile(json.dumps([{"name": "a", "timeMs": 1}]))
    with pytest.raises(BadInput, match="list"):
        parse_profile(json.dumps({"count": 1}))
    with pytest.raises(BadInput, match="name/timeMs"):
        parse_profile(json.dumps([{"count": 1}, {"name": "a"}]))
