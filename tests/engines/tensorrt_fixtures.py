"""Shared data for the TensorRT tests: the hand-made fixtures' directory and the toy ONNX graph's
node order (see tests/fixtures/tensorrt/README.md: nothing there was measured)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tensorrt"

NODE_ORDER = (
    "/conv_stem/Conv", "/act1/Sigmoid", "/act1/Mul",
    "/blocks/0/conv_dw/Conv", "/blocks/0/act/Sigmoid", "/blocks/0/act/Mul",
    "/blocks/0/se/GlobalAveragePool", "/blocks/0/se/conv_reduce/Conv", "/blocks/0/se/act/Sigmoid",
    "/blocks/0/se/act/Mul", "/blocks/0/se/conv_expand/Conv", "/blocks/0/se/gate/Sigmoid", "/blocks/0/se/Mul",
    "/blocks/0/conv_pw/Conv",
    "/global_pool/GlobalAveragePool", "/Flatten", "/classifier/Gemm",
)
SE_NODES = NODE_ORDER[6:13]

# Layer names in the toy engine's fixtures: a fused conv with its SiLU, the same with no Metadata,
# and two Myelin regions (the SE block, the head)
STEM = "/conv_stem/Conv + PWN(/act1/Sigmoid, /act1/Mul)"
DW = "/blocks/0/conv_dw/Conv + PWN(/blocks/0/act/Sigmoid, /blocks/0/act/Mul)"
SE = "{ForeignNode[/blocks/0/se/GlobalAveragePool.../blocks/0/se/Mul]}"
HEAD = "{ForeignNode[/Flatten.../classifier/Gemm]}"


def toy_onnx(path: Path) -> Path:
    """A structurally valid ONNX file whose node names are NODE_ORDER (for --onnx mapping tests;
    the operators are stand-ins: only names and order matter to the mapping)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = []
    prev = "input"
    for i, name in enumerate(NODE_ORDER):
        out = f"t{i}"
        nodes.append(helper.make_node("Relu", [prev], [out], name=name))
        prev = out
    graph = helper.make_graph(
        nodes, "toy",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["batch", 3, 224, 224])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path
