"""`scaleprof build|inspect|profile --backend tensorrt-rtx` as a deployment engineer uses them, through the
real CLI and the real library (no GPU here): one cache entry for equivalent options, a cache hit that
imports neither torch nor onnx, static engines in `inspect`, refused resolutions, bad input that
exits 2 in one line, the build time `inspect` shows, and the options in `build --help`."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from scaleprof import cli

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx has no wheel for this platform (x86-64 only)")

RTX = ("--backend", "tensorrt-rtx")


def _key(scaleprof, onnx_path, out, *args):
    code, text, err = scaleprof("build", onnx_path, *RTX, "--resolution", "32", "-o", out, "--json", *args)
    assert code == 0, err
    return json.loads(text)["key"]


def test_equivalent_options_give_one_cache_entry(scaleprof, foreign_onnx, tmp_path):
    base = _key(scaleprof, foreign_onnx, tmp_path)
    for args in (["--option", "compute_capabilities=default"], ["--option", "opt_level=3"],
                 ["--device", "cuda:0"], ["--device", "cuda:3"]):
        assert _key(scaleprof, foreign_onnx, tmp_path, *args) == base, args
    both = _key(scaleprof, foreign_onnx, tmp_path, "--option", "compute_capabilities=8.6,8.9")
    assert _key(scaleprof, foreign_onnx, tmp_path, "--option", "compute_capabilities=8.9,8.6") == both != base
    assert len(list((tmp_path / "engines").glob("tensorrt-rtx-*"))) == 2


def test_a_cache_hit_imports_neither_torch_nor_onnx(b0_onnx, tmp_path):
    argv = ["build", str(b0_onnx), *RTX, "--resolution", "64", "-o", str(tmp_path), "--json"]
    assert cli.main(argv) == 0                                   # the build, in this process
    probe = ("import json, sys; from scaleprof import cli; code = cli.main(sys.argv[1:]); "
             "print(json.dumps([code, 'torch' in sys.modules, 'onnx' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    flags = json.loads(done.stdout.strip().rsplit("\n", 1)[-1])
    assert flags == [0, False, False], done.stderr
    assert '"cached": true' in done.stdout


def _static_export(tmp_path, batch):
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    path = tmp_path / f"static_b{batch}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(batch, 3, 32, 32),), str(path), input_names=["input"],
                          output_names=["output"], dynamo=False, opset_version=17)
    return path


@pytest.mark.parametrize("batch", [1, 2])
def test_static_engines_are_inspected_with_their_memory(scaleprof, tmp_path, batch):
    path = _static_export(tmp_path, batch)
    code, out, err = scaleprof("build", path, *RTX, "--shapes", f"input:{batch}x3x32x32", "-o", tmp_path, "--json")
    assert code == 0, err
    code, text, err = scaleprof("inspect", json.loads(out)["engine"])
    assert code == 0 and err == ""
    assert f"memory     profile 0 ({batch}x3x32x32): activations" in text and "not reported" not in text


@pytest.mark.parametrize("args", [["--resolution", "8"], ["--resolution", "16,64"], ["--resolution", "30"],
                                  ["--minShapes", "input:1x3x8x8", "--maxShapes", "input:1x3x64x64"]])
def test_resolutions_below_32_are_refused(scaleprof, foreign_onnx, tmp_path, args):
    code, _, err = scaleprof("build", foreign_onnx, *RTX, "-o", tmp_path, *args)
    assert code == 2 and "below 32" in err and err.count("\n") == 1
    assert not list((tmp_path / "engines").glob("tensorrt-rtx-*"))


def test_a_resolution_off_the_graphs_rule_is_refused_before_building(scaleprof, foreign_onnx, tmp_path):
    """A file whose export record says resolutions must be 256 + k*128 (a detector's rule)."""
    import onnx

    from scaleprof.core.onnx_file import META_EXPORT

    model = onnx.load(str(foreign_onnx))
    entry = model.metadata_props.add()
    entry.key, entry.value = META_EXPORT, json.dumps({"resolution": 256, "spatial_multiple": 128})
    path = tmp_path / "ruled.onnx"
    onnx.save(model, str(path))
    code, _, err = scaleprof("build", path, *RTX, "--resolution", "320", "-o", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "resolution 320 does not fit" in err and "256 + k*128" in err
    assert not list((tmp_path / "engines").glob("tensorrt-rtx-*"))
    code, _, err = scaleprof("build", path, *RTX, "--resolution", "384", "-o", tmp_path, "--json")
    assert code == 0, err


def test_a_plan_built_without_a_gpu_opens_on_a_gpu_host(foreign_onnx, tmp_path, monkeypatch):
    """Built here (no GPU), profiled where the GPU is: the host's GPU name is not the build host's."""
    from scaleprof.engines.cache import build_engine, open_engine
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.tensorrt.rtx import TensorRTRTXBackend

    spec = BuildSpec(backend="tensorrt-rtx", device="cuda", shapes=(ShapePoint(1, 32),))
    built = build_engine(foreign_onnx, spec, tmp_path)
    monkeypatch.setattr(TensorRTRTXBackend, "device_name", lambda self, device: "NVIDIA GeForce RTX 4090")
    assert open_engine(built.directory).manifest.key == built.key


def test_profile_without_a_gpu_refuses_before_building(scaleprof, foreign_onnx, tmp_path):
    from scaleprof.engines.devices import torch_sees_a_gpu

    if torch_sees_a_gpu():
        pytest.skip("this host has a GPU: the engine would run")
    code, _, err = scaleprof("profile", foreign_onnx, *RTX, "--resolution", "32", "-o", tmp_path)
    assert code == 1 and err.count("\n") == 1 and "needs an RTX-class NVIDIA GPU" in err
    assert not (tmp_path / "engines").exists()


def test_an_unknown_operator_is_bad_input_in_one_line(scaleprof, tmp_path):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("FancyOp", ["c"], ["out"], name="weird_node", domain="com.example")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 4, "h", "w"])], [weight])
    path = tmp_path / "unknown.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]),
         str(path))
    code, out, err = scaleprof("build", path, *RTX, "--resolution", "32", "-o", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "node 'weird_node' (FancyOp)" in err and out == ""


def test_the_status_line_is_cleared():
    from io import StringIO

    from scaleprof.tools.build import StatusLine

    stream, saved = StringIO(), sys.stderr
    sys.stderr = stream
    try:
        status = StatusLine(enabled=True)
        status("building ...")
        status.clear()
    finally:
        sys.stderr = saved
    assert stream.getvalue() == "\r\033[Kbuilding ...\r\033[K"


def test_build_reports_the_build_time_inspect_shows(scaleprof, foreign_onnx, tmp_path):
    code, out, _ = scaleprof("build", foreign_onnx, *RTX, "--resolution", "32", "-o", tmp_path)
    engine = out.split()[1]
    manifest = json.loads((tmp_path / "engines" / engine.rsplit("/", 1)[1] / "manifest.json").read_text())
    assert code == 0 and f"built in {manifest['build_seconds']:.2f} s (" in out
    code, text, _ = scaleprof("inspect", engine)
    assert f"built in {manifest['build_seconds']:.2f} s" in text


def test_build_help_lists_every_tensorrt_option(capsys):
    from scaleprof.engines.tensorrt.options import OPTION_NAMES
    from scaleprof.tools.build import TRT_OPTIONS

    assert tuple(name for name, _ in TRT_OPTIONS) == OPTION_NAMES
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in OPTION_NAMES:
        assert f"{name}=" in help_text, name
    assert "runtime cache" in help_text
