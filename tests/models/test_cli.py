"""`scaleprof models`, `scaleprof scale`, `scaleprof count`: output, JSON keys, bad input."""

import json

import pytest

from scaleprof.cli import main

KEYS = {"model", "strategy", "alpha", "scale", "depth_multiplier", "width_multiplier", "resolution", "batch",
        "flops", "params", "acts", "flops_ratio"}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "efficientnet_b0" in out and "tresnet_xl" in out and "dWr" in out
    code, out, _ = run(capsys, "models", "--json")
    data = json.loads(out)
    assert code == 0 and "regnety_040" in data["families"]["regnet"]["models"] and "en" in data["strategies"]


def test_scale_json_and_table(capsys):
    code, out, _ = run(capsys, "scale", "regnety_002", "--strategy", "dWr", "--scale", "4", "--json")
    data = json.loads(out)
    assert code == 0 and KEYS <= set(data)
    assert data["strategy"] == "dWr" and data["alpha"] == 0.8 and data["scale"] == 4
    assert abs(data["flops_ratio"] / 4 - 1) <= 0.05
    code, out, _ = run(capsys, "scale", "efficientnet_b0", "--strategy", "en", "--phi", "1")
    assert code == 0 and "x2" in out and "stage depths" in out


def test_count_json_per_layer(capsys):
    code, out, _ = run(capsys, "count", "efficientnet_b0", "--json", "--per-layer", "--batch", "2")
    data = json.loads(out)
    assert code == 0 and KEYS | {"layers"} <= set(data)
    assert data["resolution"] == 224 and data["batch"] == 2 and data["strategy"] is None
    assert data["flops"] == 385825092 and data["flops_ratio"] == 1.0
    assert sum(layer["flops"] for layer in data["layers"]) == data["flops"]
    assert set(data["layers"][0]) == {"name", "type", "output_shape", "flops", "params", "acts"}
    assert data["layers"][0]["output_shape"][0] == 2
    assert data["layer_count"] == 189 and data["layer_kinds"]["conv"] == 81     # layers executed per inference


def test_count_scaled_with_resolution_override(capsys):
    code, out, _ = run(capsys, "count", "resnet50", "--strategy", "w", "--scale", "2", "--resolution", "160", "--json")
    data = json.loads(out)
    assert code == 0 and data["resolution"] == 160 and data["width_multiplier"] > 1.3
    code, out, _ = run(capsys, "count", "resnet50", "--per-layer")
    assert code == 0 and "layer1.0.conv1" in out and "per batch" in out
    assert "layers         121 executed per inference (conv 53, linear 1, elementwise 65, other 2)" in out


@pytest.mark.parametrize("argv,needle", [
    (["count", "resnet5O"], "unknown model 'resnet5O' (did you mean 'resnet50'?)"),
    (["scale", "resnet50", "--strategy", "dwR", "--scale", "2"], "unknown strategy 'dwR'"),
    (["scale", "resnet50", "--strategy", "dw", "--scale", "0"], "scale must be > 0"),
    (["scale", "resnet50", "--strategy", "dw", "--scale", "-3"], "scale must be > 0"),
    (["scale", "resnet50", "--strategy", "dWr", "--alpha", "1.5", "--scale", "2"], "alpha must be in (0, 1]"),
    (["scale", "resnet50", "--strategy", "dWr", "--alpha", "0", "--scale", "2"], "alpha must be in (0, 1]"),
    (["count", "resnet50", "--resolution", "8"], "resolution 8"),
    (["count", "resnet50", "--batch", "-4"], "batch must be a positive integer"),
    (["count", "resnet50", "--scale", "2"], "need a --strategy"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
