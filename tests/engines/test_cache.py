import json
import os
from pathlib import Path

import pytest

from scaleprof.engines import BuildSpec, ShapePoint, build_engine, open_engine
from scaleprof.engines.cache import MANIFEST, lookup, onnx_sha256
from scaleprof.engines.ort import OrtBackend
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.export.rebuild import rebuild_model

RES = 64                         # the tiny_onnx fixture's resolution (conftest.py)

SPEC = BuildSpec(backend="ort", shapes=(ShapePoint(1, RES), ShapePoint(2, RES)))


def _entries(cache_dir):
    return sorted(p.name for p in cache_dir.iterdir()) if cache_dir.exists() else []


def test_miss_then_hit(tiny_onnx, cache_dir, monkeypatch):
    first = build_engine(tiny_onnx, SPEC, cache_dir)
    assert not first.cached and first.replaced is None
    artifact = first.engine.artifact_path
    mtime = artifact.stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("a cache hit must not build")

    monkeypatch.setattr(OrtBackend, "build", no_rebuild)
    second = build_engine(tiny_onnx, SPEC, cache_dir)
    assert second.cached and second.directory == first.directory and second.key == first.key
    assert artifact.stat().st_mtime_ns == mtime                  # nothing rebuilt (timings: bench_engines)
    assert _entries(cache_dir) == [first.directory.name]          # no temp dirs left behind
    m = json.loads((first.directory / MANIFEST).read_text())
    assert m["artifact_sha256"] and m["key"] == first.key and m["extras"]["optimized_model"] == m["artifact"]


def test_key_covers_spec_and_onnx_bytes(tiny_onnx, foreign_onnx, cache_dir):
    base = build_engine(tiny_onnx, SPEC, cache_dir).key
    others = {
        build_engine(tiny_onnx, BuildSpec(backend="ort", shapes=(ShapePoint(1, RES),)), cache_dir).key,
        build_engine(tiny_onnx, BuildSpec(backend="ort", shapes=SPEC.shapes, threads=1), cache_dir).key,
        build_engine(tiny_onnx, BuildSpec(backend="ort", shapes=SPEC.shapes, options=(("opt_level", "basic"),)),
                     cache_dir).key,
        build_engine(foreign_onnx, BuildSpec(backend="ort", shapes=(ShapePoint(1, 32),)), cache_dir).key,
    }
    assert base not in others and len(others) == 4


def test_force_rebuilds(tiny_onnx, cache_dir):
    build_engine(tiny_onnx, SPEC, cache_dir)
    assert not build_engine(tiny_onnx, SPEC, cache_dir, force=True).cached
    assert build_engine(tiny_onnx, SPEC, cache_dir).cached


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "delete", "manifest"])
def test_damaged_entry_is_rebuilt_never_used(tiny_onnx, cache_dir, damage):
    first = build_engine(tiny_onnx, SPEC, cache_dir)
    artifact = first.engine.artifact_path
    if damage == "corrupt":                      # same size, one byte flipped in the middle
        data = bytearray(artifact.read_bytes())
        data[len(data) // 2] ^= 0xFF
        artifact.write_bytes(bytes(data))
    elif damage == "truncate":
        os.truncate(artifact, artifact.stat().st_size // 3)
    elif damage == "delete":
        artifact.unlink()
    else:
        (first.directory / MANIFEST).write_text('{"backend": "ort", "trunc')
    with pytest.raises(BadInput, match="unusable|corrupt|no manifest"):
        open_engine(first.directory)
    again = build_engine(tiny_onnx, SPEC, cache_dir, progress=lambda msg: None)
    assert not again.cached and again.replaced
    assert lookup(cache_dir, again.key, "ort")[1] is not None     # the new entry is intact
    assert build_engine(tiny_onnx, SPEC, cache_dir).cached
    with open_engine(again.directory) as engine:
        assert engine.run(engine.make_inputs(ShapePoint(1, RES)))


def test_corrupt_side_file_is_detected(tiny_onnx, cache_dir):
    built = build_engine(tiny_onnx, BuildSpec(backend="torch", shapes=(ShapePoint(1, RES),)), cache_dir,
                         model_source=rebuild_model)
    (built.directory / "onnx_nodes.json").write_text("{}")
    with pytest.raises(BadInput, match="onnx_nodes.json does not match"):
        open_engine(built.directory)


def test_open_refuses_other_backend_version_and_device(tiny_onnx, cache_dir):
    built = build_engine(tiny_onnx, SPEC, cache_dir)
    path = built.directory / MANIFEST
    original = json.loads(path.read_text())
    for field, value in (("backend_version", "0.0.1"), ("device_name", "Some Other CPU")):
        path.write_text(json.dumps({**original, field: value}))
        with pytest.raises(EnvironmentProblem, match=f"{value}.*rebuild it: scaleprof build .* --backend ort") as err:
            open_engine(built.directory)
        assert "\n" not in str(err.value)
    path.write_text(json.dumps(original))
    assert open_engine(built.directory).manifest.key == built.key


def test_concurrent_builds_of_one_key_leave_one_entry(tiny_onnx, cache_dir):
    import subprocess
    import sys

    code = ("import sys; from scaleprof.engines import BuildSpec, ShapePoint, build_engine; "
            f"r = build_engine(sys.argv[1], BuildSpec(backend='ort', shapes=(ShapePoint(1, {RES}), ShapePoint(2, {RES}))), "
            "sys.argv[2]); print(r.directory)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tiny_onnx), str(cache_dir)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1
    assert _entries(cache_dir) == [Path(results[0][0].strip()).name]
    assert build_engine(tiny_onnx, SPEC, cache_dir).cached


def test_not_an_engine_directory(tmp_path):
    with pytest.raises(BadInput, match="not an engine directory"):
        open_engine(tmp_path)


def test_failed_build_leaves_nothing(tiny_onnx, cache_dir, monkeypatch):
    from scaleprof.engines import backends

    backend = backends.get_backend("ort")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash mid-build")

    monkeypatch.setattr(backend, "build", broken)
    with pytest.raises(RuntimeError):
        build_engine(tiny_onnx, SPEC, cache_dir)
    assert _entries(cache_dir) == []


def test_unwritable_cache_dir(tiny_onnx, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(EnvironmentProblem, match="cannot write engines under"):
        build_engine(tiny_onnx, SPEC, blocker / "engines")


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "missing"])
def test_bad_onnx_files(tiny_onnx, tmp_path, cache_dir, how):
    bad = tmp_path / "bad.onnx"
    data = tiny_onnx.read_bytes()
    if how == "garbage":
        bad.write_bytes(b"\x00not an onnx file\xff" * 100)
    elif how == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        bad.write_bytes(b"")
    with pytest.raises(BadInput) as err:
        build_engine(bad, SPEC, cache_dir)
    assert "\n" not in str(err.value)
    assert _entries(cache_dir) == []


def test_non_image_onnx(vector_onnx, cache_dir):
    with pytest.raises(BadInput, match="not an image tensor"):
        build_engine(vector_onnx, SPEC, cache_dir)


def test_static_onnx_rejects_other_shapes(static_onnx, cache_dir):
    assert not build_engine(static_onnx, BuildSpec(shapes=(ShapePoint(1, 32),)), cache_dir).cached
    with pytest.raises(BadInput, match="fixed at 1"):
        build_engine(static_onnx, BuildSpec(shapes=(ShapePoint(4, 32),)), cache_dir)


def test_onnx_hash_covers_external_data(tmp_path, foreign_onnx):
    import onnx

    model = onnx.load(str(foreign_onnx))
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=0)
    before = onnx_sha256(path)
    data = bytearray((tmp_path / "ext.onnx.data").read_bytes())
    data[0] ^= 0xFF
    (tmp_path / "ext.onnx.data").write_bytes(bytes(data))
    assert onnx_sha256(path) != before
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(BadInput, match="external data"):
        onnx_sha256(path)
