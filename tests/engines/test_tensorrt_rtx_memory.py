"""The builder's memory lines and the layer file against the predicted counts, without building:
a real TensorRT-RTX 1.7.1 build log (tests/fixtures/tensorrt/efficientnet_b0.rtx-1.7.1.build.jsonl,
recorded from an EfficientNet-B0 build with three static profiles), and the pure helpers."""

from __future__ import annotations

import json

import pytest
from tests.engines.tensorrt_fixtures import FIXTURES

from scaleprof.engines.tensorrt.build_log import BuildLog
from scaleprof.engines.tensorrt.network import layer_counts, layer_summary, memory_rows
from scaleprof.engines.tensorrt.options import compute_capabilities, precision_mode
from scaleprof.errors import BadInput

RECORDED = FIXTURES / "efficientnet_b0.rtx-1.7.1.build.jsonl"


def _replay(log: BuildLog, lines) -> BuildLog:
    for severity, text in lines:
        log.record(severity, text)
    return log


def recorded():
    return [json.loads(line) for line in RECORDED.read_text().splitlines() if line.strip()]


def test_activation_memory_per_profile_from_the_recorded_build():
    log = _replay(BuildLog(), recorded())
    assert log.activation_bytes() == [15015936, 17104896, 19472384]
    assert log.weights_bytes == 20970368 and log.errors() == []


def test_without_the_verbose_markers_the_lines_are_taken_in_profile_order():
    info_only = [(s, t) for s, t in recorded() if s <= 3]
    assert _replay(BuildLog(), info_only).activation_bytes() == [15015936, 17104896, 19472384]


def test_reset_forgets_the_previous_build():
    log = _replay(BuildLog(), recorded() + [(1, "node 'a': broken")])
    log.reset()
    assert log.activation_bytes() == [] and log.errors() == [] and log.cause() == "no error message from TensorRT"


def test_the_cause_is_the_first_telling_error():
    """Without a CUDA driver TensorRT-RTX follows an API error with cudaError 35 lines (as it logged
    them for add_optimization_profile with MIN > OPT, shortened)."""
    log = _replay(BuildLog(), [
        (1, "IOptimizationProfile::isValid: Error Code 4: API Usage Error (Invalid optimization profiles for "
            "input tensors input, please ensure that the optimization profiles satisfy MIN<=OPT<=MAX.)"),
        (1, "[checkMacros.cpp::catchCudaError::250] Error Code 1: Cuda Runtime (cudaError 35: CUDA driver "
            "version is insufficient for CUDA runtime version)"),
        (2, "a warning"),
        (1, "IBuilderConfig::addOptimizationProfile: Error Code 3: API Usage Error (Parameter check failed)")])
    assert "MIN<=OPT<=MAX" in log.cause() and len(log.errors()) == 3
    only_noise = _replay(BuildLog(), [(1, "Cuda Runtime (cudaError 35: CUDA driver version is insufficient)")])
    assert "cudaError 35" in only_noise.cause()


def test_layer_counts_give_each_node_to_one_layer():
    layers = [{"name": "/conv/Conv", "type": "CONVOLUTION", "onnx_nodes": ["/conv/Conv"], "precision": "fp32"},
              {"name": "ONNXTRT_castHelper", "type": "CAST", "onnx_nodes": [], "precision": "int64"},
              {"name": "/fc/Gemm", "type": "MATRIX_MULTIPLY", "onnx_nodes": ["/fc/Gemm"], "precision": "fp32"},
              {"name": "/fc/Gemm_3", "type": "ELEMENTWISE", "onnx_nodes": ["/fc/Gemm"], "precision": "fp32"}]
    counts = {"/conv/Conv": (100, 10, 50), "/fc/Gemm": (40, 41, 4)}
    rows = layer_counts(layers, counts)
    assert [(r["flops"], r["params"], r["acts"]) for r in rows] == [(100, 10, 50), (0, 0, 0), (40, 41, 4), (0, 0, 0)]
    summary = layer_summary(layers)
    assert summary["layers"] == 4 and summary["onnx_nodes"] == 2
    assert summary["precisions"] == {"fp32": 3, "int64": 1} and next(iter(summary["by_type"])) == "CONVOLUTION"


def test_memory_rows_set_the_reported_bytes_against_acts_x_batch_x_element():
    extras = {"activation_bytes": [15015936, 62783488],
              "profiles": [{k: {"batch": 1, "resolution": 224} for k in ("min", "opt", "max")},
                           {"min": {"batch": 1, "resolution": 224}, "opt": {"batch": 8, "resolution": 224},
                            "max": {"batch": 8, "resolution": 224}}]}
    acts = {224: 6748036}            # EfficientNet-B0 at 224 px (scaleprof count)
    rows = memory_rows(extras, "fp32", acts.get)
    assert [(r["batch"], r["predicted_bytes"]) for r in rows] == [(1, 6748036 * 4), (8, 6748036 * 8 * 4)]
    assert rows[0]["ratio"] == round(15015936 / (6748036 * 4), 3)
    assert memory_rows(extras, "fp16", acts.get)[0]["predicted_bytes"] == 6748036 * 2
    unknown = memory_rows({"profiles": extras["profiles"][:1]}, "fp32", lambda r: None)
    assert unknown == [{"profile": 0, "batch": 1, "resolution": 224, "activation_bytes": None,
                        "predicted_bytes": None, "ratio": None}]


@pytest.mark.parametrize("text, want", [(None, ()), ("default", ()), ("current", ("current",)),
                                        ("12.0,8.6", ("8.6", "12.0")), ("8.9+8.9", ("8.9",))])
def test_compute_capability_option(text, want):
    assert compute_capabilities(text) == want


def test_compute_capability_option_refuses_other_spellings():
    with pytest.raises(BadInput, match="MAJOR.MINOR"):
        compute_capabilities("sm86")


def test_precision_messages_name_the_library():
    assert precision_mode(11, "fp32", "fp32", "TensorRT-RTX").note.startswith("TensorRT-RTX: strongly typed")
    with pytest.raises(BadInput, match="^TensorRT-RTX builds strongly typed networks only"):
        precision_mode(11, "fp16", "fp32", "TensorRT-RTX")
    with pytest.raises(BadInput, match="^TensorRT 11 builds strongly typed networks only"):
        precision_mode(11, "fp16", "fp32")
