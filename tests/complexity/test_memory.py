"""estimate_memory: every intermediate tensor of an ONNX graph, alive from its node to its last reader."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from scaleprof.complexity import count_onnx
from scaleprof.complexity.memory import RUNTIME_FACTOR, MemoryEstimate, estimate_memory
from scaleprof.errors import BadInput


def _model(nodes, initializers, out_channels):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", out_channels, None, None])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _conv(name, src, dst, cin, cout):
    weight = numpy_helper.from_array(np.ones((cout, cin, 1, 1), np.float32), name)
    return helper.make_node("Conv", [src, name], [dst]), weight


def test_a_resize_the_counts_cannot_see_is_in_the_estimate():
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 16, 16])
    model = _model([helper.make_node("Resize", ["input", "", "scales"], ["big"], mode="nearest"),
                    helper.make_node("GlobalAveragePool", ["big"], ["output"])], [scales], 3)
    estimate = estimate_memory(model, 64)
    assert count_onnx(model, 1, 64).acts == 0                       # nothing counted: the old estimate's blind spot
    big = 3 * (16 * 64) ** 2 * 4
    assert estimate.peak_bytes_per_pixel * 64 ** 2 == pytest.approx(big + 3 * 4)
    live = 3 * (16 * 512) ** 2 * 4 + 12                             # the Resize's output and the pooled one
    assert estimate.bytes_at(8, 512) == pytest.approx(8 * (RUNTIME_FACTOR * live + 3 * 512 ** 2 * 4), rel=1e-6)


def test_tensors_are_freed_after_their_last_reader():
    """conv a -> conv b -> conv c: at most two of the 8-channel maps are alive at once (not all three)."""
    a, wa = _conv("wa", "input", "a", 3, 8)
    b, wb = _conv("wb", "a", "b", 8, 8)
    c, wc = _conv("wc", "b", "output", 8, 8)
    estimate = estimate_memory(_model([a, b, c], [wa, wb, wc], 8), 32)
    one_map = 8 * 4                                                  # bytes per pixel of one 8-channel map
    assert estimate.peak_bytes_per_pixel == pytest.approx(2 * one_map)
    assert estimate.weights_bytes == (3 * 8 + 8 * 8 + 8 * 8) * 4
    assert estimate.input_bytes_per_pixel == 12


def test_a_skip_connection_keeps_its_tensor_alive():
    """a feeds both b and the Add after c: a, b and c are alive together at c."""
    a, wa = _conv("wa", "input", "a", 3, 8)
    b, wb = _conv("wb", "a", "b", 8, 8)
    c, wc = _conv("wc", "b", "c", 8, 8)
    add = helper.make_node("Add", ["a", "c"], ["output"])
    estimate = estimate_memory(_model([a, b, c, add], [wa, wb, wc], 8), 32)
    assert estimate.peak_bytes_per_pixel == pytest.approx(3 * 8 * 4)


@pytest.mark.parametrize("recorded", [
    {"weights_bytes": 1, "input_bytes_per_pixel": 12.0, "peak_bytes_per_pixel": math.nan},
    {"weights_bytes": -1, "input_bytes_per_pixel": 12.0, "peak_bytes_per_pixel": 1.0},
    {"weights_bytes": 1, "input_bytes_per_pixel": "12", "peak_bytes_per_pixel": 1.0},
    {"weights_bytes": 1, "input_bytes_per_pixel": 12.0},
    [1, 2, 3],
])
def test_a_recorded_estimate_that_is_not_three_numbers_is_refused(recorded):
    with pytest.raises(BadInput, match="rebuild the engine"):
        MemoryEstimate.from_dict(recorded)


def test_the_recorded_estimate_round_trips():
    estimate = MemoryEstimate(100, 12.0, 80.5)
    assert MemoryEstimate.from_dict(estimate.to_dict()) == estimate
