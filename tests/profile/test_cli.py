import json

import pytest

import scaleprof.cli as cli
from scaleprof.profile.environment import capture_environment
from scaleprof.profile.roofline import cache_path, device_peaks


@pytest.fixture
def run_cli(monkeypatch, capsys):
    monkeypatch.setattr(cli, "SUBTOOLS", ("profile",))    # the other subtools are not this test's concern

    def run(*argv):
        code = cli.main(["profile", *map(str, argv)])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


FAST = ("--min-time", "0", "--max-time", "1", "--min-iters", "10", "--warmup", "2", "--no-roofline")


def test_json_keys_with_per_layer(run_cli, tiny_onnx, tmp_path):
    code, out, err = run_cli(tiny_onnx, "--resolution", 32, "--per-layer", "--iterations", 3, "--json",
                             "--threads", 1, "-o", tmp_path, *FAST)
    assert code == 0, err
    data = json.loads(out)
    assert set(data["latency_ms"]) >= {"median", "mean", "min", "p90", "p99", "std", "cv", "ci95"}
    for key in ("throughput", "iterations", "environment", "layers", "layer_sum_ms", "coverage", "overhead_ratio"):
        assert key in data
    assert set(data["layers"][0]) >= {"name", "onnx_nodes", "op_type", "time_ms", "flops", "params", "acts"}
    assert data["environment"]["backend"] == "ort" and data["environment"]["key"]
    assert data["coverage"] >= 0.95


def test_readable_output_from_engine_dir(run_cli, tiny_engine, tmp_path):
    code, out, err = run_cli(tiny_engine.directory, "--batch", 2, "--per-layer", "--iterations", 2, "--top", 3,
                             "--cache-dir", tmp_path, *FAST)
    assert code == 0, err
    assert "median" in out and "95% CI" in out and "top 3 slowest layers" in out and "coverage" in out


@pytest.mark.parametrize("args, words", [
    (("--batch", 3), "outside"),                       # the engine takes batch 1 and 2 only
    (("--resolution", 64), "outside"),
    (("--max-time", 0), "maximum time must be positive"),
    (("--max-time", -2), "maximum time must be positive"),
    (("--min-iters", 0), "minimum iterations must be positive"),
    (("--iterations", 0), "layer-profiling iterations must be positive"),
    (("--batch", 0), "batch must be a positive integer"),
    (("--target-ci", 2), "target CI"),
])
def test_bad_inputs_one_line(run_cli, tiny_engine, args, words):
    code, out, err = run_cli(tiny_engine.directory, *args, "--min-time", 0)
    assert code != 0
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_engine_from_another_backend_version(run_cli, tiny_engine, tmp_path):
    import shutil

    copy = tmp_path / "engine"
    shutil.copytree(tiny_engine.directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["backend_version"] = "0.0.1"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(copy, "--min-time", 0)
    assert code != 0 and "0.0.1" in err and "rebuild" in err and len(err.strip().splitlines()) == 1


def test_missing_target(run_cli, tmp_path):
    code, _, err = run_cli(tmp_path / "nope.onnx")
    assert code == 2 and "no such" in err


def test_environment_key_ignores_clocks():
    env = capture_environment("ort", "1.0", "cpu", threads=2)
    assert env.device_name and env.host and env.versions["python"] and "onnxruntime" in env.versions
    same = capture_environment("ort", "1.0", "cpu", threads=2)
    from dataclasses import replace
    assert replace(same, clocks={"cpu_mhz": 1.0}).key == env.key
    assert capture_environment("ort", "1.0", "cpu", threads=1).key != env.key


def test_device_peaks_cached_per_device(tmp_path, monkeypatch):
    import scaleprof.profile.roofline as roofline

    calls = []
    monkeypatch.setattr(roofline, "_measure_cpu", lambda *a: calls.append(a) or (2e9, 3e9, "fake"))
    first = device_peaks("cpu", "CPU A", cache_dir=tmp_path)
    again = device_peaks("cpu", "CPU A", cache_dir=tmp_path)
    other = device_peaks("cpu", "CPU B", cache_dir=tmp_path)
    assert len(calls) == 2 and first == again and other.device_name == "CPU B"
    assert cache_path(tmp_path, "CPU A", "cpu", "fp32", None).is_file()
    assert first.bound(4e9, 0) == (2000.0, "compute") and first.bound(0, 6e9) == (2000.0, "memory")


def test_device_peaks_real_calibration(tmp_path):
    peaks = device_peaks("cpu", cache_dir=tmp_path)
    assert peaks.macs_per_s > 1e8 and peaks.bytes_per_s > 1e8


def test_several_engines_are_timed_in_interleaved_rounds(run_cli, tiny_engine, tiny_onnx, tmp_path):
    code, out, err = run_cli(tiny_engine.directory, tiny_engine.directory, "--batch", 2, "--json",
                             "--cache-dir", tmp_path, *FAST)
    assert code == 0, err
    data = json.loads(out)
    assert len(data) == 2
    for one in data:
        rounds = one["rounds"]
        assert rounds["kept"] + rounds["discarded"] >= 3 and set(rounds) == {"kept", "discarded", "contended", "reason"}
        assert "round" in one["stop_reason"] and one["batch"] == 2
    code, out, err = run_cli(tiny_engine.directory, tiny_engine.directory, "--batch", 2, "--cache-dir", tmp_path, *FAST)
    assert code == 0, err
    assert out.count("rounds   ") == 2 and "kept" in out
