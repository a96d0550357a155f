"""Sweep config: YAML safe-load, validation with one clear line per problem, grid expansion."""

from __future__ import annotations

import pytest

from scaleprof.errors import BadInput
from scaleprof.sweep.config_file import PRESETS, load_config, parse_config

MINIMAL = "models: [efficientnet_b0]\nstrategies: [d]\nscales: [1, 2]\ntargets: [cpu-ort]\n"


def bad(text: str) -> str:
    with pytest.raises(BadInput) as info:
        parse_config(text, where="bad.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("bad.yaml: ")
    return message


def test_minimal_config_gets_defaults():
    c = parse_config(MINIMAL)
    assert c.batch_sizes == (1,) and c.resolutions == (None,) and c.precisions == ("fp32",)
    assert c.alpha == (0.8,) and c.layers is True and c.targets == (PRESETS["cpu-ort"],)
    assert [p.key for p in c.points()] == ["efficientnet_b0|d||1|auto|b1|fp32", "efficientnet_b0|d||2|auto|b1|fp32"]


def test_grid_expands_every_axis_and_alpha_only_for_dWr():
    c = parse_config("models: [efficientnet_b0, resnet50]\nstrategies: [d, dWr]\nalpha: [0.5, 0.8]\n"
                     "scales: [1, 2, 4]\nbatch_sizes: [1, 8]\nresolutions: [auto, 256]\n"
                     "targets: [cpu-ort, {name: t1, backend: torch, threads: 1, options: {channels_last: true}}]\n")
    # models 2 x (d + dWr x 2 alphas) 3 x scales 3 x res 2 x batch 2 x targets 2
    assert len(c.points()) == 2 * 3 * 3 * 2 * 2 * 2
    assert len({(p.key, p.target) for p in c.points()}) == len(c.points())
    assert {p.alpha for p in c.points() if p.strategy == "d"} == {None}
    assert c.target("t1").options == (("channels_last", True),) and c.target("t1").threads == 1


def test_fp16_preset_takes_only_fp16_points():
    c = parse_config(MINIMAL.replace("[cpu-ort]", "[cpu-ort, h100-trt-fp16]") + "precisions: [fp32, fp16]\n")
    assert {(p.target, p.precision) for p in c.points()} == {
        ("cpu-ort", "fp32"), ("cpu-ort", "fp16"), ("h100-trt-fp16", "fp16")}


def test_timing_settings(capsys):
    c = parse_config(MINIMAL + "timing: {min_time_s: 0.5, max_time_s: 2, layer_iters: 5, layers: false}\n")
    assert c.timing.min_time_s == 0.5 and c.timing.max_time_s == 2.0 and c.timing.layer_iters == 5
    assert c.layers is False
    assert c.to_dict()["timing"]["min_time_s"] == 0.5 and "profile" not in c.to_dict()
    assert capsys.readouterr().err == ""


def test_old_profile_key_is_read_with_a_one_line_notice(capsys):
    c = parse_config(MINIMAL + "profile: {min_time_s: 0.5, max_time_s: 2, layer_iters: 5, layers: false}\n",
                     where="old.yaml")
    assert c.timing.min_time_s == 0.5 and c.timing.max_time_s == 2.0 and c.timing.layer_iters == 5
    assert c.layers is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("old.yaml: note: 'profile:' is now called 'timing:'")


def test_old_profile_key_errors_name_it_and_print_no_notice(capsys):
    assert "unknown key 'profile.min_tme_s' (did you mean 'min_time_s'?)" in bad(MINIMAL + "profile: {min_tme_s: 1}\n")
    assert capsys.readouterr().err == ""


def test_timing_and_profile_together_is_one_line():
    message = bad(MINIMAL + "timing: {min_time_s: 1}\nprofile: {min_time_s: 2}\n")
    assert "both 'timing' and 'profile' are given" in message


@pytest.mark.parametrize("text, expected", [
    ("models: [a\n", "malformed YAML at line"),
    (": : :\n", "malformed YAML"),
    ("", "got an empty file"),
    ("- a\n- b\n", "expected a mapping"),
    (MINIMAL + "scalez: [1]\n", "unknown key 'scalez' (did you mean 'scales'?)"),
    (MINIMAL + "batch_size: [1]\n", "unknown key 'batch_size' (did you mean 'batch_sizes'?)"),
    (MINIMAL + "timing: {min_tme_s: 1}\n", "unknown key 'timing.min_tme_s' (did you mean 'min_time_s'?)"),
    (MINIMAL.replace("[cpu-ort]", "[{name: x, backend: ort, thread: 2}]"),
     "unknown key 'targets.thread' (did you mean 'threads'?)"),
    ("models: [efficientnet_b0]\nstrategies: [d]\ntargets: [cpu-ort]\n", "missing required key: scales"),
    (MINIMAL.replace("scales: [1, 2]", "scales: []"), "scales: the list is empty"),
    (MINIMAL.replace("models: [efficientnet_b0]", "models: []"), "models: the list is empty"),
    (MINIMAL.replace("targets: [cpu-ort]", "targets: []"), "targets: the list is empty"),
    (MINIMAL.replace("strategies: [d]", "strategies: [dwR]"), "unknown strategy 'dwR' (did you mean 'dwr' or 'dWr'?)"),
    (MINIMAL.replace("scales: [1, 2]", "scales: [0]"), "scales must be > 0 (a flops factor; 1 is the base model), got 0"),
    (MINIMAL.replace("scales: [1, 2]", "scales: [two]"), "scales: expected numbers, got 'two'"),
    (MINIMAL + "alpha: 1.5\n", "alpha: 1.5 is outside (0, 1]"),
    (MINIMAL + "batch_sizes: [0]\n", "batch_sizes must be a positive integer, got 0"),
    (MINIMAL + "batch_sizes: [1.5]\n", "batch_sizes: expected integers"),
    (MINIMAL + "resolutions: [big]\n", "resolutions: expected 'auto' or a pixel size"),
    (MINIMAL + "precisions: [fp4]\n", "unknown precision 'fp4'"),
    (MINIMAL + "precisions: [fp8]\n", "the grid is empty: no target takes any of the precisions (fp8"),
    (MINIMAL + "timing: [1]\n", "timing: expected a mapping of timing settings"),
    (MINIMAL.replace("[cpu-ort]", "[cpu-ortt]"), "unknown preset 'cpu-ortt' (did you mean 'cpu-ort'?)"),
    (MINIMAL.replace("[cpu-ort]", "[{name: x, backend: onnxruntime}]"), "unknown backend 'onnxruntime'"),
    (MINIMAL.replace("[cpu-ort]", "[{name: x, backend: ort, device: gpu}]"), "device must be 'cpu', 'cuda'"),
    (MINIMAL.replace("[cpu-ort]", "[{name: x, backend: ort, threads: 0}]"), "threads must be a positive integer"),
    (MINIMAL.replace("[cpu-ort]", "[cpu-ort, cpu-ort]"), "duplicate target name 'cpu-ort'"),
    (MINIMAL.replace("[cpu-ort]", "[h100-trt-fp16]"), "the grid is empty"),
    (MINIMAL + "timing: {min_time_s: 2, max_time_s: 1}\n", "timing.max_time_s (1) is below min_time_s (2)"),
    (MINIMAL + "timing: {layers: maybe}\n", "timing.layers: expected true or false"),
    (MINIMAL + "budget_ms: [-1]\n", "budget_ms: budgets must be positive"),
    (MINIMAL + "budget_ms: [.nan]\n", "budget_ms: budgets must be positive, finite"),
    (MINIMAL + "batch_sizes: [.inf]\n", "batch_sizes: expected integers, got inf"),
    (MINIMAL + "timing: {min_iters: .inf}\n", "timing.min_iters: expected an integer, got inf"),
    (MINIMAL + "timing: {min_time_s: .nan}\n", "timing.min_time_s: nan must be positive and finite"),
    (MINIMAL + "timing: {warmup_s: -1}\n", "timing.warmup_s: -1 must be zero or more"),
])
def test_bad_config_is_one_clear_line(text, expected):
    assert expected in bad(text)


def test_yaml_is_safe_loaded():
    message = bad("models: !!python/object/apply:os.system ['echo hacked']\n")
    assert "malformed YAML" in message


def test_load_config_names_the_file(tmp_path):
    with pytest.raises(BadInput, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL)
    assert load_config(path).name == "mine"


def test_shipped_configs_load(capsys):
    from scaleprof.sweep.config_file import resolve_config, shipped_configs

    names = shipped_configs()
    assert "demo" in names and "paper_efficientnet_b0" in names
    for name in names:
        assert resolve_config(name).points()
    assert capsys.readouterr().err == ""            # shipped configs use `timing:`, no deprecation notice
    demo = resolve_config("demo")
    assert demo.name == "demo-efficientnet_b0" and demo.strategies == ("d", "w", "r", "dwr", "dWr")
    assert demo.scales == (1.0, 2.0, 4.0)
    assert demo.batch_sizes == (1,) and demo.layers and [t.name for t in demo.targets] == ["cpu-ort"]
    paper = resolve_config("paper_efficientnet_b0")
    assert set(paper.strategies) == {"d", "w", "r", "dw", "dr", "wr", "dwr", "dWr"} and paper.alpha == (0.8,)


def test_unknown_shipped_config_name_suggests_the_nearest(tmp_path, monkeypatch):
    from scaleprof.errors import BadInput
    from scaleprof.sweep.config_file import resolve_config

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match=r"dmo: no such config file.*did you mean 'demo'\?.*shipped: .*paper_efficientnet_b0"):
        resolve_config("dmo")


def test_a_target_skips_the_precisions_its_backend_does_not_build():
    from scaleprof.sweep.config_file import from_dict

    config = from_dict({"models": ["efficientnet_b0"], "strategies": ["d"], "scales": [1],
                        "precisions": ["fp32", "int8", "fp8"], "targets": ["cpu-ort", "cpu-torch"]})
    assert sorted((p.target, p.precision) for p in config.points()) == [
        ("cpu-ort", "fp32"), ("cpu-ort", "int8"), ("cpu-torch", "fp32")]
