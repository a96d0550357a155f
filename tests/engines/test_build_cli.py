"""`scaleprof build`: what it prints, and one line plus a non-zero exit for each bad input."""

import json

import pytest

from scaleprof import cli


@pytest.fixture
def scaleprof(monkeypatch, capsys):
    monkeypatch.setattr(cli, "SUBTOOLS", ("build",))     # the dispatcher and its error handling, this tool only

    def call(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_build_then_cache_hit(scaleprof, tiny_onnx, tmp_path):
    code, out, err = scaleprof("build", tiny_onnx, "-o", tmp_path, "--batch", "1,2", "--threads", "1")
    assert code == 0 and "built in" in out and str(tmp_path / "engines") in out
    assert "1x3x64x64, 2x3x64x64" in out                  # default resolution: the spec's own (64)
    code, out, err = scaleprof("build", tiny_onnx, "-o", tmp_path, "--shapes",
                               "input:1x3x64x64,input:2x3x64x64", "--threads", "1", "--json")
    data = json.loads(out)
    assert code == 0 and data["cached"] is True and data["shapes"] == ["1x3x64x64", "2x3x64x64"]
    assert data["engine"].startswith(str(tmp_path / "engines" / "ort-"))


def test_ranges_and_cache_dir(scaleprof, tiny_onnx, tmp_path):
    code, out, _ = scaleprof("build", tiny_onnx, "--cache-dir", tmp_path / "c", "--minShapes", "input:1x3x64x64",
                             "--maxShapes", "input:4x3x96x96", "--json")
    data = json.loads(out)
    assert code == 0 and data["ranges"] == [{"min": "1x3x64x64", "opt": "4x3x96x96", "max": "4x3x96x96"}]
    assert data["engine"].startswith(str(tmp_path / "c"))


@pytest.mark.parametrize("args, code, words", [
    (["--backend", "onnxrt"], 2, "unknown backend 'onnxrt'"),
    (["--device", "gpu"], 2, "unknown device 'gpu'"),
    (["--shapes", "input:1x3x64"], 2, "has 3 dims"),
    (["--batch", "0"], 2, "positive integers"),
    (["--threads", "0"], 2, "--threads must be a positive integer"),
    (["--option", "compile"], 2, "KEY=VALUE"),
])
def test_bad_arguments_are_one_line(scaleprof, tiny_onnx, tmp_path, args, code, words):
    got, out, err = scaleprof("build", tiny_onnx, "-o", tmp_path, *args)
    assert got == code and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "engines").exists() or not any((tmp_path / "engines").iterdir())


def test_missing_and_corrupt_onnx(scaleprof, tmp_path):
    code, _, err = scaleprof("build", tmp_path / "nope.onnx", "-o", tmp_path)
    assert code == 2 and "no such ONNX file" in err and err.count("\n") == 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12garbage" * 10)
    code, _, err = scaleprof("build", bad, "-o", tmp_path, "--resolution", "64")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_unwritable_output_dir(scaleprof, tiny_onnx, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = scaleprof("build", tiny_onnx, "-o", blocker)
    assert code == 1 and "cannot write engines under" in err and err.count("\n") == 1


def test_missing_backend_package_names_the_extra(scaleprof, tiny_onnx, tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    code, _, err = scaleprof("build", tiny_onnx, "-o", tmp_path, "--backend", "tensorrt", "--device", "cuda")
    assert code == 1 and "scaleprof[tensorrt]" in err and err.count("\n") == 1


def test_ort_cuda_without_gpu_package(scaleprof, tiny_onnx, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    code, _, err = scaleprof("build", tiny_onnx, "-o", tmp_path, "--device", "cuda")
    assert code == 1 and "scaleprof[gpu]" in err


def test_torch_backend_from_the_cli(scaleprof, tiny_onnx, tmp_path):
    code, out, _ = scaleprof("build", tiny_onnx, "-o", tmp_path, "--backend", "torch", "--option",
                             "channels_last=true", "--json")
    data = json.loads(out)
    assert code == 0 and data["backend"] == "torch" and data["cached"] is False
