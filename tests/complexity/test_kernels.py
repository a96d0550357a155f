"""The layer count: which operations execute a layer, of which kind, and the count of known networks."""

from __future__ import annotations

import pytest

from scaleprof.core.kernels import KINDS, op_kind, tally


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


@pytest.mark.parametrize("model, kinds", [
    # EfficientNet-B0: 81 convs (BN folded), the classifier; SiLU x49, SE sigmoid x16 and gate x16,
    # 9 residual adds; SE means x16 and the head's pooling
    ("efficientnet_b0", {"conv": 81, "linear": 1, "elementwise": 90, "other": 17}),
    # ResNet-50: 53 convs, fc; ReLU x49, 16 residual adds; max pool, global pool
    ("resnet50", {"conv": 53, "linear": 1, "elementwise": 65, "other": 2}),
])
def test_layer_count_of_known_networks(model, kinds):
    from scaleprof.complexity import count_spec

    counts = count_spec(model)
    assert counts.layer_kinds == kinds and counts.layer_count == sum(kinds.values())
    assert counts.to_dict(per_layer=False)["layer_count"] == counts.layer_count


def test_depth_adds_layers_width_and_resolution_do_not():
    from scaleprof.complexity import count_spec
    from scaleprof.models import scale_spec

    base = count_spec("efficientnet_b0").layer_count
    assert count_spec(scale_spec("efficientnet_b0", "d", 2.0)).layer_count > 1.8 * base
    assert count_spec(scale_spec("efficientnet_b0", "w", 2.0)).layer_count == base
    assert count_spec("efficientnet_b0", resolution=320).layer_count == base
