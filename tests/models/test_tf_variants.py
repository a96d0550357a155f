"""timm's TensorFlow ports (tf_efficientnet_b*, tf_efficientnetv2_*): named in specs like any base model,
built with TF "same" padding, counted and scaled; unknown names suggest the nearest known one."""

import json

import pytest
import timm

from scaleprof.cli import main
from scaleprof.models import all_models, base_spec, build_model, family_of, list_models
from scaleprof.models.meta import SkipInitOnMeta
from scaleprof.models.zoo import suggest_model

TF_V1 = [f"tf_efficientnet_b{i}" for i in range(8)]
TF_V2 = ["tf_efficientnetv2_s", "tf_efficientnetv2_m", "tf_efficientnetv2_l", "tf_efficientnetv2_xl"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tf_names_are_in_their_families():
    families = list_models()
    assert set(TF_V1) <= set(families["efficientnet"]) and set(TF_V2) <= set(families["efficientnetv2"])
    assert family_of("tf_efficientnet_b3").name == "efficientnet"
    assert family_of("tf_efficientnetv2_s").name == "efficientnetv2"
    # the paper resolutions, as for the PyTorch-native B-models
    assert [base_spec(m).resolution for m in TF_V1] == [base_spec(m[3:]).resolution for m in TF_V1] \
        == [224, 240, 260, 300, 380, 456, 528, 600]
    for name in ("tf_efficientnet_b0", "tf_efficientnetv2_s"):
        kwargs = base_spec(name).arch["kwargs"]
        assert kwargs["pad_type"] == "same" and kwargs["bn_eps"] == pytest.approx(1e-3)


@pytest.mark.parametrize("name", ["tf_efficientnet_b0", "tf_efficientnet_b5", "tf_efficientnetv2_s"])
def test_tf_base_model_is_timms_with_same_padding(name):
    from timm.layers.conv2d_same import Conv2dSame

    ours = build_model(base_spec(name), device="meta")
    with SkipInitOnMeta():
        theirs = timm.create_model(name, device="meta")
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    same = [n for n, m in ours.named_modules() if isinstance(m, Conv2dSame)]
    assert same == [n for n, m in theirs.named_modules() if isinstance(m, Conv2dSame)] and same


def test_count_tf_efficientnet_b0(capsys):
    # TF padding changes no conv's output shape or weights: the counts are EfficientNet-B0's
    code, out, _ = run(capsys, "count", "tf_efficientnet_b0", "--json")
    tf = json.loads(out)
    code2, out, _ = run(capsys, "count", "efficientnet_b0", "--json")
    native = json.loads(out)
    assert code == code2 == 0 and tf["family"] == "efficientnet" and tf["resolution"] == 224
    assert (tf["flops"], tf["params"], tf["acts"]) == (native["flops"], native["params"], native["acts"])
    assert tf["flops"] == 385825092


@pytest.mark.parametrize("name", ["tf_efficientnet_b0", "tf_efficientnetv2_s"])
def test_scale_tf_model_within_5_percent(capsys, name):
    code, out, _ = run(capsys, "scale", name, "--strategy", "dWr", "--scale", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["model"] == name and data["strategy"] == "dWr"
    assert abs(data["flops_ratio"] / 2 - 1) <= 0.05
    assert data["spec"]["arch"]["kwargs"]["pad_type"] == "same"        # the scaled network keeps TF padding
    assert data["widths"] != data["base_widths"] and data["resolution"] > data["base"]["resolution"]


@pytest.mark.parametrize("command", [["count"], ["scale", "--strategy", "d", "--scale", "2"],
                                     ["export", "-o", "never.onnx"]])
@pytest.mark.parametrize("typo, suggestion", [
    ("tf_efficientnet_bO", "tf_efficientnet_b0"),            # letter O for zero
    ("TF-EfficientNet-B3", "tf_efficientnet_b3"),            # case and dashes
    ("tf_efficientnetv2_s.in21k", "tf_efficientnetv2_s"),    # a timm pretrained tag
    ("tf_efficientnetv2s", "tf_efficientnetv2_s"),
    ("efficientnet_b00", "efficientnet_b0"),
])
def test_unknown_model_suggests_nearest_one_line_exit_2(capsys, tmp_path, monkeypatch, command, typo, suggestion):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, command[0], typo, *command[1:])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"unknown model {typo!r} (did you mean {suggestion!r}?)" in err and "scaleprof models" in err
    assert not list(tmp_path.iterdir())


def test_suggestions():
    assert suggest_model("resnet5O") == "resnet50" and suggest_model("regnety040") == "regnety_040"
    assert suggest_model("tf_efficientnet_b0.ns_jft_in1k") == "tf_efficientnet_b0"
    assert suggest_model("vit_base_patch16_224") is None
    assert all(suggest_model(m) == m for m in all_models())
