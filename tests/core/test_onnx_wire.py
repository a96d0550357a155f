"""Reading an ONNX file's graph without its weights (core.onnx_wire through load_model(load_weights=False)):
the graph is the file's, each large weight a reference to its exact bytes in the file, small tensors
inline; anything that is no binary protobuf still gets onnx's own reading and its one-line error."""

import pytest

from scaleprof.core.onnx_file import INLINE_BYTES, load_model
from scaleprof.core.onnx_wire import graph_without_weights
from scaleprof.errors import BadInput

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def conv_net(path, channels=64):
    """conv 3x3 (a large weight) -> ReLU -> reshape by a small constant shape -> gemm (a large weight)."""
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((channels, 3, 3, 3)), "b": rng.standard_normal(channels),
               "g": rng.standard_normal((channels * 16 * 16, 10)), "shape": np.array([1, -1])}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "g"], ["y"])]
    initializers = [numpy_helper.from_array(v.astype("int64" if k == "shape" else "float32"), k)
                    for k, v in weights.items()]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_large_weights_become_references_to_their_bytes_in_the_file(tmp_path):
    path = conv_net(tmp_path / "net.onnx")
    full = onnx.load(str(path))
    light = onnx.load_model_from_string(graph_without_weights(path, min_bytes=INLINE_BYTES))
    assert [n.SerializeToString() for n in light.graph.node] == [n.SerializeToString() for n in full.graph.node]
    data = path.read_bytes()
    for ours, theirs in zip(light.graph.initializer, full.graph.initializer):
        assert (ours.name, list(ours.dims), ours.data_type) == (theirs.name, list(theirs.dims), theirs.data_type)
        if len(theirs.raw_data) >= INLINE_BYTES:
            entries = {e.key: e.value for e in ours.external_data}
            start, length = int(entries["offset"]), int(entries["length"])
            assert ours.data_location == TensorProto.EXTERNAL and entries["location"] == "net.onnx"
            assert data[start:start + length] == theirs.raw_data and not ours.raw_data
        else:
            assert ours.SerializeToString() == theirs.SerializeToString()
    assert {t.name for t in light.graph.initializer if t.external_data} == {"g"}


def test_load_without_weights_reads_the_graph_and_still_checks_it(tmp_path):
    path = conv_net(tmp_path / "net.onnx")
    model = load_model(path, load_weights=False)
    assert [t.name for t in model.graph.initializer if t.external_data] == ["g"]
    assert numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "shape")).tolist() == [1, -1]
    broken = onnx.load(str(path))
    broken.graph.node[1].input[0] = "nothing"          # a dangling reference: the checker's business
    onnx.save(broken, str(tmp_path / "broken.onnx"))
    with pytest.raises(BadInput, match="invalid ONNX model"):
        load_model(tmp_path / "broken.onnx", load_weights=False)


def test_a_file_cut_inside_a_weight_is_refused_in_one_line(tmp_path):
    path = conv_net(tmp_path / "net.onnx")
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        graph_without_weights(tmp_path / "cut.onnx")
    with pytest.raises(BadInput, match="not a readable ONNX model") as err:
        load_model(tmp_path / "cut.onnx", load_weights=False)
    assert "\n" not in str(err.value)


def test_small_files_and_external_data_files_are_left_to_onnx(tmp_path):
    small = conv_net(tmp_path / "small.onnx", channels=2)
    assert graph_without_weights(small, min_bytes=INLINE_BYTES) is None
    model = onnx.load(str(conv_net(tmp_path / "net.onnx")))
    (tmp_path / "ext").mkdir()
    onnx.save(model, str(tmp_path / "ext" / "net.onnx"), save_as_external_data=True, location="w.bin",
              size_threshold=0)
    assert graph_without_weights(tmp_path / "ext" / "net.onnx") is None
    assert load_model(tmp_path / "ext" / "net.onnx", load_weights=False).graph.initializer[0].external_data
