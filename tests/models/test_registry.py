"""Base models: built through timm's own builders, identical to timm.create_model, JSON round trip."""

import pytest
import timm
import torch

from scaleprof.errors import BadInput
from scaleprof.models import ModelSpec, all_models, base_spec, build_model, family_of, get_family, list_models
from scaleprof.models.families import FAMILIES, register_family
from scaleprof.models.families.resnet import ResNetFamily
from scaleprof.models.meta import SkipInitOnMeta


def _param_count(model):
    return sum(p.numel() for p in model.parameters())


# One or more of every family and builder path (EfficientNet v1/v2 and the rw variants, RegNet X/Y,
# TResNet widths 1.0/1.3, ResNet basic/bottleneck/deep stem); every name is checked to build below.
REPRESENTATIVE = ["efficientnet_b0", "efficientnet_b3", "efficientnet_b7", "efficientnetv2_s", "efficientnetv2_rw_t",
                  "regnetx_002", "regnetx_032", "regnety_002", "regnety_040", "tresnet_m", "tresnet_xl",
                  "resnet18", "resnet50", "resnet50d"]


def test_every_name_has_a_spec():
    for name in all_models():
        spec = base_spec(name)
        assert spec.family and spec.arch and spec.resolution >= 224


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_base_model_matches_timm(name):
    """The spec rebuilds exactly timm's network: same module names, parameter shapes."""
    ours = build_model(base_spec(name), device="meta")
    with SkipInitOnMeta():  # weight init is meaningless on meta and slow
        theirs = timm.create_model(name, device="meta")
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]


def test_families_and_defaults():
    families = list_models()
    assert set(families) == {"efficientnet", "efficientnetv2", "regnet", "tresnet", "resnet", "efficientdet"}
    assert "efficientnet_b0" in families["efficientnet"] and "efficientnet_b7" in families["efficientnet"]
    assert {"tresnet_m", "tresnet_l", "tresnet_xl"} <= set(families["tresnet"])
    assert "resnet50" in families["resnet"] and "efficientnetv2_s" in families["efficientnetv2"]
    assert base_spec("efficientnet_b0").resolution == 224
    assert base_spec("resnet50").resolution == 224
    assert base_spec("efficientnet_b4").resolution == 380  # EfficientNet paper resolution
    cfg = base_spec("regnety_040").arch["cfg"]
    assert {"w0", "wa", "wm", "depth", "group_size"} <= set(cfg)


def test_spec_json_round_trip_rebuilds_same_weights():
    spec = base_spec("regnetx_002")
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec and again.key == spec.key
    a, b = build_model(spec), build_model(again)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert not a.training
    with torch.no_grad():
        assert a(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_unknown_model_suggests():
    with pytest.raises(BadInput, match="did you mean 'regnety_040'"):
        base_spec("regnety040")


def test_families_are_listed_in_registration_order():
    assert list(list_models()) == ["efficientnet", "efficientnetv2", "regnet", "tresnet", "resnet", "efficientdet"]


@pytest.fixture
def restored_families():
    saved = dict(FAMILIES)
    yield
    FAMILIES.clear()
    FAMILIES.update(saved)


def test_a_new_family_is_one_registered_class(restored_families):
    """What a new family module (say, EfficientDet detectors) does: subclass Family, register it, and
    the zoo, the lookups and the shared per-stage accessors know it."""

    @register_family
    class TinyResNets(ResNetFamily):
        name = "tiny_resnet"
        bases = ("resnet10t",)

    assert list_models()["tiny_resnet"] == ["resnet10t"] and family_of("resnet10t").name == "tiny_resnet"
    spec = base_spec("resnet10t")
    family = get_family("tiny_resnet")
    assert family.depths(spec.arch) == [1, 1, 1, 1] and family.widths(spec.arch) == [64, 128, 256, 512]
    assert family.group_widths(spec.arch) is None
    assert family.block_of("layer2.0.conv1") == (1, 0) and family.block_of("fc") is None
    with pytest.raises(ValueError, match="name of its own"):
        register_family(TinyResNets)
