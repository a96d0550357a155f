"""trtexec interop without trtexec: command lines, version banner, --exportTimes, the subprocess
wrapper (against a stand-in script that only exits), and `scaleprof ingest` on the hand-made
fixtures (tests/fixtures/tensorrt/README.md)."""

from __future__ import annotations

import argparse
import json
import os
import stat

import pytest
from tests.engines.tensorrt_fixtures import FIXTURES, NODE_ORDER, SE_NODES, toy_onnx

from scaleprof.engines.base import ShapePoint as P, ShapeRange as R
from scaleprof.engines.tensorrt.options import precision_mode
from scaleprof.engines.tensorrt.trtexec import (TimingRun, build_command, find_trtexec, last_error,
                                                parse_banner_version, parse_times, profile_command,
                                                run, shape_spec, sniff)
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.tools import ingest

DYN = {"input": (-1, 3, -1, -1)}


def _build(inputs=DYN, profiles=(R(P(1, 224), P(1, 224), P(1, 224)),), major=10, precision="fp32",
           onnx_precision="fp32", **kw):
    return build_command("trtexec", "m.onnx", "e/engine.plan", inputs=inputs, profiles=profiles,
                         mode=precision_mode(major, precision, onnx_precision), trt_major=major,
                         opt_level=kw.pop("opt_level", 3), **kw)


def test_build_command_single_profile():
    cmd = _build(workspace_mib=2048, timing_cache="/c/t.cache", layer_info="e/engine.plan.graph.json")
    assert cmd == ["trtexec", "--onnx=m.onnx", "--saveEngine=e/engine.plan", "--skipInference",
                   "--profilingVerbosity=detailed", "--builderOptimizationLevel=3",
                   "--minShapes=input:1x3x224x224", "--optShapes=input:1x3x224x224",
                   "--maxShapes=input:1x3x224x224", "--memPoolSize=workspace:2048M",
                   "--timingCacheFile=/c/t.cache", "--exportLayerInfo=e/engine.plan.graph.json"]


def test_build_command_one_profile_flag_group_per_profile():
    profiles = (R(P(1, 224), P(8, 224), P(32, 224)), R(P(1, 256), P(1, 256), P(1, 256)))
    cmd = _build(profiles=profiles)
    i0, i1 = cmd.index("--profile=0"), cmd.index("--profile=1")
    assert cmd[i0 + 1:i0 + 4] == ["--minShapes=input:1x3x224x224", "--optShapes=input:8x3x224x224",
                                  "--maxShapes=input:32x3x224x224"]
    assert cmd[i1 + 1:i1 + 4] == ["--minShapes=input:1x3x256x256", "--optShapes=input:1x3x256x256",
                                  "--maxShapes=input:1x3x256x256"]


def test_build_command_precision_flags_for_tensorrt_10_and_11():
    assert "--fp16" in _build(precision="fp16")
    typed = _build(precision="fp16", onnx_precision="fp16")
    assert "--stronglyTyped" in typed and "--fp16" not in typed
    t11 = _build(precision="fp16", onnx_precision="fp16", major=11)
    assert "--stronglyTyped" not in t11 and "--fp16" not in t11        # always strongly typed in 11
    with pytest.raises(BadInput, match="--precision fp16"):
        _build(precision="fp16", major=11)


def test_build_command_static_input_has_no_shape_flags_and_names_are_quoted():
    assert not any(a.startswith("--minShapes") for a in _build(inputs={"input": (1, 3, 224, 224)}, profiles=()))
    assert shape_spec("input:0", (1, 3, 8, 8)) == "'input:0':1x3x8x8"
    assert shape_spec("x", (1, 3, 8, 8)) == "x:1x3x8x8"


def test_profile_command():
    cmd = profile_command("trtexec", "e/engine.plan", input_name="input", shape=P(8, 224), profile_index=2,
                          num_profiles=3, times="t.json", profile="p.json", layer_info="l.json",
                          run=TimingRun(warmup_ms=500, iterations=200, duration_s=5))
    assert cmd[:2] == ["trtexec", "--loadEngine=e/engine.plan"]
    for flag in ("--shapes=input:8x3x224x224", "--useProfile=2", "--useCudaGraph", "--noDataTransfers",
                 "--warmUp=500", "--iterations=200", "--duration=5", "--exportTimes=t.json",
                 "--separateProfileRun", "--exportProfile=p.json", "--exportLayerInfo=l.json"):
        assert flag in cmd
    plain = profile_command("trtexec", "e.plan", input_name="input", shape=P(1, 224), run=TimingRun(cuda_graph=False))
    assert "--useProfile=0" not in plain and "--useCudaGraph" not in plain and "--separateProfileRun" not in plain


def test_banner_version():
    assert parse_banner_version("&&&& RUNNING TensorRT.trtexec [TensorRT v100500] [b18] # trtexec --help") == "10.5.0"
    assert parse_banner_version("[TensorRT v110001]") == "11.0.1"
    with pytest.raises(EnvironmentProblem):
        parse_banner_version("no banner")


def test_times_fixture():
    trace = parse_times((FIXTURES / "efficientnet_toy.times.json").read_text())
    assert trace.iterations == 30
    assert min(trace.compute_ms) == pytest.approx(0.2) and max(trace.compute_ms) == pytest.approx(0.216)
    assert trace.latency_ms == trace.compute_ms                      # --noDataTransfers: no H2D/D2H
    assert trace.enqueue_ms[0] == pytest.approx(0.015)
    assert trace.wall_s == pytest.approx((29 * 0.25 + trace.compute_ms[-1]) / 1000)
    with pytest.raises(BadInput, match="computeMs"):
        parse_times('[{"latencyMs": 1}]')


def test_sniff():
    assert sniff({"Layers": []}) == "layer-info"
    assert sniff([{"count": 3}, {"name": "a"}]) == "profile"
    assert sniff([{"computeMs": 1}]) == "times"
    with pytest.raises(BadInput):
        sniff([1, 2])


def _script(tmp_path, body):
    path = tmp_path / "trtexec"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_run_failure_is_one_line_quoting_trtexec(tmp_path):
    exe = _script(tmp_path, "echo '[11/22/2025-10:00:00] [I] building'\n"
                            "echo '[11/22/2025-10:00:01] [E] Error[4]: [network.cpp::validate] no profile' >&2\nexit 1\n")
    with pytest.raises(EnvironmentProblem) as info:
        run([exe, "--onnx=m.onnx"], log=tmp_path / "log.txt")
    message = str(info.value)
    assert "\n" not in message and "exit 1" in message and "no profile" in message
    assert "--onnx=m.onnx" in (tmp_path / "log.txt").read_text()
    assert last_error("[I] fine\n[E] broken thing\n") == "broken thing"


def test_find_trtexec(tmp_path, monkeypatch):
    exe = _script(tmp_path, "exit 0\n")
    assert find_trtexec(exe) == exe
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert find_trtexec(None) == exe
    with pytest.raises(EnvironmentProblem, match="trtexec not found"):
        find_trtexec(str(tmp_path / "nowhere" / "trtexec"))


# --- scaleprof ingest ----------------------------------------------------------------------

def _args(*argv):
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    return parser.parse_args(argv)


def test_ingest_all_three_exports_as_json(tmp_path, capsys):
    onnx_path = toy_onnx(tmp_path / "toy.onnx")
    files = [str(FIXTURES / f"efficientnet_toy.{k}.json") for k in ("profile", "times", "trt10.graph")]
    assert ingest.run(_args(*files, "--onnx", str(onnx_path), "--batch", "8", "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["files"]) == {"profile", "times", "layer-info"}
    lat = out["latency"]
    assert lat["iterations"] == 30 and lat["batch"] == 8 and lat["timing_method"] == "trtexec-gpu-compute"
    assert lat["median"] == pytest.approx(0.208)
    assert lat["throughput"] == pytest.approx(8 * 1000 / 0.208)
    layers = out["layers"]
    assert layers["count"] == 7 and layers["iterations"] == 20
    assert layers["layer_sum_ms"] == pytest.approx(sum([0.004, 0.061, 0.048, 0.072, 0.031, 0.009, 0.012]) * 0.98)
    assert layers["overhead_ratio"] == pytest.approx(layers["layer_sum_ms"] / lat["median"])
    se = next(r for r in layers["rows"] if r["name"].startswith("{ForeignNode[/blocks"))
    assert se["opaque"] and set(se["onnx_nodes"]) == set(SE_NODES)
    assert out["graph"]["onnx_nodes"] == len(NODE_ORDER)


def test_ingest_text_summary(capsys):
    files = [str(FIXTURES / f"efficientnet_toy.{k}.json") for k in ("times", "profile")]
    assert ingest.run(_args(*files, "--top", "3")) == 0
    text = capsys.readouterr().out
    assert "median 0.2080 ms" in text and "layers: 7 over 20 iterations" in text
    assert "[opaque]" in text and "4 more" in text


def test_ingest_refuses_unknown_and_duplicate_files(tmp_path):
    other = tmp_path / "x.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(BadInput, match="not a trtexec export"):
        ingest.ingest([str(other)])
    times = str(FIXTURES / "efficientnet_toy.times.json")
    with pytest.raises(BadInput, match="two times files"):
        ingest.ingest([times, times])
    with pytest.raises(BadInput, match="no such file"):
        ingest.ingest([str(tmp_path / "missing.json")])


@pytest.mark.parametrize("name, text, words", [
    ("times.json", '[{"computeMs": "abc"}]', "computeMs is not a number: 'abc'"),
    ("times.json", '[{"computeMs": 0.2, "startEnqMs": null}]', "startEnqMs is not a number: None"),
    ("profile.json", '[{"count": "x"}]', "count is not a number: 'x'"),
    ("profile.json", '[{"count": 3}, {"name": "a", "timeMs": "zz"}]', "'a' timeMs is not a number: 'zz'"),
])
def test_ingest_non_numeric_values_are_one_clear_error(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInput, match=words):
        ingest.ingest([str(path)])


def test_ingest_onnx_that_is_not_onnx_is_one_clear_error(tmp_path):
    times = FIXTURES / "efficientnet_toy.times.json"
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(times.read_bytes())
    with pytest.raises(BadInput, match="not a readable ONNX model"):
        ingest.ingest([str(times)], onnx=str(wrong))
    with pytest.raises(BadInput, match="no such ONNX file"):
        ingest.ingest([str(times)], onnx=str(tmp_path / "missing.onnx"))


def test_ingest_enqueue_median_is_the_median_of_an_even_count(tmp_path):
    path = tmp_path / "times.json"
    path.write_text(json.dumps([{"computeMs": 1.0, "startEnqMs": 10.0 * i, "endEnqMs": 10.0 * i + d}
                                for i, d in enumerate((1.0, 2.0, 3.0, 4.0))]))
    assert ingest.ingest([str(path)])["enqueue_ms_median"] == pytest.approx(2.5)   # (2 + 3) / 2, not the upper 3
