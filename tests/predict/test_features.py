"""Network features from per-layer counts: groups, layers, flops and bytes moved."""

from scaleprof.core.counts import Counts, LayerCount
from scaleprof.predict.features import NetworkFeatures, network_features


def row(name, kind, shape, flops=0, params=0):
    acts = 1
    for d in shape[1:]:                     # per image
        acts *= d
    counted = kind in ("Conv2d", "Linear")
    return LayerCount(name, kind, shape, flops, params, acts if counted else 0)


def mbconv_counts(batch=1):
    """stem conv -> BN+SiLU -> depthwise 3x3 -> SE (reduce, act, expand, gate) -> pointwise -> head."""
    c, hw = 16, 32
    layers = [
        row("stem", "Conv2d", (batch, c, hw, hw), flops=27 * c * hw * hw, params=27 * c),
        row("bn1", "BatchNormAct2d", (batch, c, hw, hw), params=2 * c),
        row("bn1.act", "SiLU", (batch, c, hw, hw)),
        row("dw", "Conv2d", (batch, c, hw, hw), flops=9 * c * hw * hw, params=9 * c),
        row("se.conv_reduce", "Conv2d", (batch, 4, 1, 1), flops=c * 4 + 4, params=c * 4 + 4),
        row("se.act1", "SiLU", (batch, 4, 1, 1)),
        row("se.conv_expand", "Conv2d", (batch, c, 1, 1), flops=4 * c + c, params=4 * c + c),
        row("se.gate", "Sigmoid", (batch, c, 1, 1)),
        row("pw", "Conv2d", (batch, 24, hw, hw), flops=c * 24 * hw * hw, params=c * 24),
        row("pool", "AdaptiveAvgPool2d", (batch, 24, 1, 1)),
        row("flatten", "Flatten", (batch, 24)),
        row("fc", "Linear", (batch, 10), flops=24 * 10 + 10, params=24 * 10 + 10),
    ]
    return Counts.from_layers(layers, hw, hw, batch)


def test_layers_fall_into_the_profile_categories():
    f = network_features(mbconv_counts())
    assert {g: w.layers for g, w in f.groups.items()} == {
        "conv": 2, "depthwise conv": 1, "SE": 6, "elementwise": 1, "pooling": 1, "linear": 1}
    # SE: reduce (+ the pooling and the gating multiply of the map), act, expand, gate; BN is folded away
    assert f.groups["conv"].flops == (27 * 16 + 16 * 24) * 32 * 32
    assert f.groups["depthwise conv"].flops == 9 * 16 * 32 * 32


def test_bytes_count_what_each_layer_reads_and_writes():
    f = network_features(mbconv_counts())
    fmap = 16 * 32 * 32
    assert f.groups["elementwise"].act_elements == 2 * fmap                 # SiLU reads and writes the map
    assert f.groups["depthwise conv"].act_elements == 2 * fmap              # reads the map, writes one
    # pooling read + multiply read/write of the map, then the 1x1 tensors: act 4 -> 4, expand 4 -> 16, gate 16 -> 16
    assert f.groups["SE"].act_elements == 3 * fmap + (4 + 4) + (4 + 16) + (16 + 16)
    assert f.groups["conv"].act_elements == (3 * 32 * 32 + fmap) + (fmap + 24 * 32 * 32)   # stem reads the image
    assert f.groups["conv"].weight_elements == 27 * 16 + 16 * 24


def test_features_are_per_image_and_round_trip():
    one, four = network_features(mbconv_counts(1)), network_features(mbconv_counts(4))
    assert one == four
    assert NetworkFeatures.from_dict(one.to_dict()) == one
    assert one.layers == 12 and one.signature() == four.signature()
