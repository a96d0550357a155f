"""What a TensorRT-RTX build reports, against the real library on a host without a GPU: the engine's
fused layers with their ONNX origins in the manifest, graph JSON and `inspect`; the weights memory;
the GPU targets really built and dropped (fp8 keeps Ada and later); determinism as measured; each
profile's memory against a target GPU; the runtime cache option."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scaleprof.engines.base import BuildSpec, ShapePoint as P

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx has no wheel for this platform (x86-64 only)")


def _spec(*shapes, precision="fp32", **options):
    return BuildSpec(backend="tensorrt-rtx", device="cuda", precision=precision, shapes=tuple(shapes),
                     options=tuple(options.items()))


def _build(onnx_path, directory, *shapes, precision="fp32", **options):
    from scaleprof.engines.cache import build_engine

    return build_engine(onnx_path, _spec(*shapes, precision=precision, **options), directory).engine


@pytest.fixture(scope="module")
def b0_engine(b0_onnx, tmp_path_factory):
    return _build(b0_onnx, tmp_path_factory.mktemp("b0"), P(1, 64), P(2, 96))


def fp8_onnx(path):
    """A convolution whose input and weights pass through fp8 (E4M3) quantize/dequantize pairs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zero = helper.make_tensor("zp", TensorProto.FLOAT8E4M3FN, [], [0.0])
    weight = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "zp"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq_in"),
             helper.make_node("QuantizeLinear", ["w", "s", "zp"], ["wq"], name="q_w"),
             helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["wd"], name="dq_w"),
             helper.make_node("Conv", ["xd", "wd"], ["out"], name="conv", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "fp8", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 8, "h", "w"])],
                              [weight, scale, zero])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    return path


# --- fused layers ----------------------------------------------------------------------------

def test_manifest_carries_the_fused_layers_with_their_origins(b0_engine, b0_onnx):
    from scaleprof.engines.tensorrt.origins import onnx_node_order, summarize_graph
    from scaleprof.engines.tensorrt.inspector import read_inspector

    extras = b0_engine.manifest.extras
    rows = extras["fused_layers"]
    assert extras["engine_layers_per_profile"][0] == extras["engine_layers"] == len(
        [r for r in rows if r["profile"] == 0]) and len(extras["engine_layers_per_profile"]) == 2
    assert extras["engine_layers"] < 249                # fewer than the network's layers before fusion
    assert all(r["tactic"] is not None and r["outputs"] in ([], ["fp32"]) for r in rows)
    order = onnx_node_order(b0_onnx)
    covered = {n for r in rows if r["profile"] == 0 for n in r["onnx_nodes"]}
    assert len(covered & set(order)) / len(order) >= 0.95
    graph = read_inspector(b0_engine.directory / extras["graph_json"])          # the TREx-readable sidecar
    assert graph.schema == "trt11" and len(graph.profile_layers(1)) == extras["engine_layers_per_profile"][1]
    assert summarize_graph(graph, order)["onnx_nodes_covered"] >= 0.95 * len(order)


def test_weights_and_activation_memory_are_stored(b0_engine):
    extras = b0_engine.manifest.extras
    assert 19 * 2**20 < extras["weights_bytes"] < 22 * 2**20          # B0's 5.3 M fp32 parameters
    assert len(extras["activation_bytes"]) == 2 and extras["activation_bytes"][0] < extras["activation_bytes"][1]


def test_the_engine_maps_its_layers_from_the_sidecar(b0_engine):
    layer_map = b0_engine.layer_map()
    first_conv = next(r for r in b0_engine.manifest.extras["fused_layers"] if r["type"] == "correlation")
    assert layer_map(first_conv["name"])[0] == tuple(first_conv["onnx_nodes"])


def test_inspect_shows_the_fused_layers(scaleprof, b0_engine):
    code, out, err = scaleprof("inspect", b0_engine.directory)
    assert code == 0 and err == ""
    extras = b0_engine.manifest.extras
    assert f"fused      {extras['engine_layers']} layers after fusion" in out
    assert f"weights {extras['weights_bytes'] / 2**20:.1f} MiB" in out and "built 8.0; dropped none" in out
    assert "determinism not measured" in out


# --- targets -------------------------------------------------------------------------------

def test_the_targets_built_are_read_from_the_plan(foreign_onnx, tmp_path):
    default = _build(foreign_onnx, tmp_path, P(1, 32)).manifest.extras
    assert default["compute_capabilities"] == ["default"] and default["built_targets"] == ["8.0"]
    assert default["dropped_targets"] == []
    chosen = _build(foreign_onnx, tmp_path, P(1, 32), compute_capabilities="8.9,8.6").manifest.extras
    assert chosen["built_targets"] == ["8.6", "8.9"] and chosen["dropped_targets"] == []


def test_an_fp8_plan_drops_the_targets_before_ada(tmp_path):
    from scaleprof.errors import BadInput

    path = fp8_onnx(tmp_path / "fp8.onnx")
    extras = _build(path, tmp_path, P(1, 32), precision="fp8").manifest.extras
    assert extras["built_targets"] == ["8.9"] and extras["dropped_targets"] == ["8.0", "8.6"]
    with pytest.raises(BadInput, match="compute capability 8.0: .*fp8.*drop 8.0"):
        _build(path, tmp_path, P(1, 32), precision="fp8", compute_capabilities="8.0,8.9")


# --- determinism, memory, runtime cache ------------------------------------------------------

def test_determinism_is_measured_only_when_asked(foreign_onnx, tmp_path, monkeypatch):
    from scaleprof.engines.tensorrt import build_api

    plain = _build(foreign_onnx, tmp_path, P(1, 32)).manifest.extras
    assert plain["deterministic"] is None and plain["determinism"].startswith("not measured")
    checked = _build(foreign_onnx, tmp_path, P(1, 32), determinism="check").manifest.extras
    assert checked["deterministic"] is True and checked["determinism"] == "measured: a second build gave the same bytes"
    real = build_api.build_serialized
    calls = []

    def drifting(*args, **kwargs):          # a builder whose second plan differs
        built = real(*args, **kwargs)
        calls.append(1)
        return dataclasses.replace(built, plan=built.plan + bytes(len(calls) - 1))

    monkeypatch.setattr(build_api, "build_serialized", drifting)
    drift = _build(foreign_onnx, tmp_path / "drift", P(1, 32), determinism="check").manifest.extras
    assert drift["deterministic"] is False and "other bytes" in drift["determinism"] and len(calls) == 2


def test_profiles_beyond_the_target_gpu_memory_are_refused(scaleprof, b0_onnx, tmp_path):
    code, out, err = scaleprof("build", b0_onnx, "--backend", "tensorrt-rtx", "--batch", "1,64", "--resolution", "64",
                               "--option", "gpu_memory_gib=0.05", "-o", tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "optimisation profile 1 (64x3x64x64) needs" in err and "the target GPU's 0.05 GiB" in err
    assert not list((tmp_path / "engines").glob("tensorrt-rtx-*"))         # nothing cached
    code, out, err = scaleprof("build", b0_onnx, "--backend", "tensorrt-rtx", "--resolution", "64",
                               "--option", "gpu_memory_gib=24", "-o", tmp_path, "--json")
    manifest = json.loads((tmp_path / "engines" / json.loads(out)["engine"].rsplit("/", 1)[1] / "manifest.json").read_text())
    assert code == 0 and manifest["extras"]["fits_gpu_memory"] is True and manifest["extras"]["gpu_memory_gib"] == 24


def test_runtime_cache_is_recorded_and_wired_to_the_library(foreign_onnx, tmp_path):
    """Building needs no GPU; filling the cache does (the kernels are compiled there): the wiring is
    checked against the real module's API and a recording stand-in of a loaded engine."""
    from scaleprof.engines.tensorrt.runtime_cache import RuntimeCache

    path = tmp_path / "rtx.cache"
    extras = _build(foreign_onnx, tmp_path, P(1, 32), runtime_cache=str(path)).manifest.extras
    assert extras["runtime_cache"] == str(path.resolve())
    for cls, method in ((trt.ICudaEngine, "create_runtime_config"), (trt.IRuntimeConfig, "create_runtime_cache"),
                        (trt.IRuntimeConfig, "set_runtime_cache"), (trt.IRuntimeCache, "serialize"),
                        (trt.IRuntimeCache, "deserialize")):
        assert hasattr(cls, method), (cls, method)

    calls = []

    class Cache:
        def deserialize(self, blob):
            calls.append(("deserialize", bytes(blob)))
            return True

        def serialize(self):
            return b"kernels"

    class Config:
        def create_runtime_cache(self):
            return Cache()

        def set_runtime_cache(self, cache):
            calls.append("set")
            return True

    class Engine:
        def create_runtime_config(self):
            return Config()

        def create_execution_context(self, config):
            calls.append(("context", type(config).__name__))

    path.write_bytes(b"old")
    cache = RuntimeCache(Engine(), path)
    cache.context(Engine())
    cache.save()
    assert calls == [("deserialize", b"old"), "set", ("context", "Config")] and cache.loaded
    assert path.read_bytes() == b"kernels"


def test_tensorrt_refuses_the_runtime_cache_option():
    from scaleprof.engines.tensorrt.backend import TensorRTBackend
    from scaleprof.engines.tensorrt.options import trt_options
    from scaleprof.errors import BadInput

    opts = trt_options(_spec(P(1, 32), runtime_cache="x.cache"))
    with pytest.raises(BadInput, match="no runtime cache"):
        TensorRTBackend().check_options(opts)
