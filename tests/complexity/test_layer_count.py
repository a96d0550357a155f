"""The layer count of known networks, and which scalings add layers."""

from __future__ import annotations

import pytest


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
