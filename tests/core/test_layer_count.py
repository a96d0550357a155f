"""The layer classifier: which operations execute a layer, and of which kind."""

from __future__ import annotations

import pytest

from scaleprof.core.layer_count import KINDS, op_kind, tally


@pytest.mark.parametrize("op, kind", [
    ("conv2d", "conv"), ("Conv", "conv"), ("ConvTranspose", "conv"), ("linear", "linear"), ("Gemm", "linear"),
    ("MatMul", "linear"), ("silu", "elementwise"), ("relu_", "elementwise"), ("__iadd__", "elementwise"),
    ("add_", "elementwise"), ("Sigmoid", "elementwise"), ("mul", "elementwise"), ("mean", "other"),
    ("adaptive_avg_pool2d", "other"), ("GlobalAveragePool", "other"), ("max_pool2d", "other"),
    ("Concat", "other"), ("contiguous", "other"),
])
def test_executed_operations_have_a_kind(op, kind):
    assert op_kind(op) == kind


@pytest.mark.parametrize("op", ["batch_norm", "BatchNormalization", "__get__", "_assert", "view", "flatten",
                                "Flatten", "Reshape", "Constant", "Shape", "dropout", "Identity", "size"])
def test_views_metadata_and_folded_batchnorm_execute_no_layer(op):
    assert op_kind(op) is None


def test_tally_has_every_kind():
    # an SE block after a conv-bn-silu: conv, bn (folded), silu, mean, conv, silu, conv, sigmoid, mul
    ops = ["conv2d", "batch_norm", "silu", "mean", "conv2d", "silu", "conv2d", "sigmoid", "mul", "__get__"]
    assert tally(ops) == {"conv": 3, "linear": 0, "elementwise": 4, "other": 1}
    assert tuple(tally([])) == KINDS
