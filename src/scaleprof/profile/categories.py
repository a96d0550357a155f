"""What kind of work a profiled layer does: one category per layer, from the exported ONNX nodes it
executes (a fused SE conv is SE, a conv with a fused activation is conv, ...), and which op types
carry counts at all. Squeeze-and-excitation blocks and depthwise convolutions are recognised from
the graph's structure (scaleprof.engines.anchors.OnnxGraph), and so are a detector's head, fusion
and resample nodes (scaleprof.profile.roles)."""

from __future__ import annotations

from scaleprof.engines.anchors import OnnxGraph

# ONNX ops that pycls counts (docs/conventions.md#counting); everything else counts 0 by convention.
COUNTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "BatchNormalization"}

ACTIVATIONS = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Elu", "Selu",
               "Gelu", "QuickGelu", "FastGelu", "Softplus", "Mish", "PRelu", "Swish", "BiasGelu", "Erf"}
POOLS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax"}
REFORMAT = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
            "Identity", "Cast", "Pad", "SpaceToDepth", "DepthToSpace", "Expand", "Tile", "Shape",
            "ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Copy", "Reformat", "Shuffle",
            "QuantizeLinear", "DequantizeLinear"}     # a QDQ pair an engine did not fuse: a type conversion
_QDQ = ("QuantizeLinear", "DequantizeLinear")
ELEMENTWISE = {"Add", "Sum", "Sub", "Mul", "Div"}
NORMS = {"BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization"}

CATEGORIES = ("conv", "depthwise conv", "SE", "head", "fusion", "resample", "linear", "pooling", "activation",
              "elementwise", "normalization", "reformat/copy", "other", "not executed")


def is_depthwise(graph: OnnxGraph, name: str) -> bool:
    node = graph.nodes[name]
    if node.op_type != "Conv":
        return False
    group = graph.attribute(name, "group", 1)
    shape = graph.weight_shape(name)
    return group > 1 and shape is not None and len(shape) > 1 and shape[1] == 1


def se_nodes(graph: OnnxGraph) -> set[str]:
    """Squeeze-and-excitation blocks, found structurally: a Mul that gates tensor x with a value
    computed (within a few nodes) from a global pool of x. Every node between pool and Mul is SE."""
    se: set[str] = set()
    for name in graph.order:
        node = graph.nodes[name]
        if node.op_type != "Mul" or len([t for t in node.input if t]) != 2:
            continue
        for x, gate in (node.input, node.input[::-1]):
            path = _path_to_pool(graph, gate, x, depth=10)
            if path:
                se.update(path)
                se.add(name)
                break
    return se


def _path_to_pool(graph: OnnxGraph, tensor: str, source: str, depth: int) -> list[str] | None:
    """Nodes from ``tensor`` back to a global pool whose input is ``source`` (DFS, bounded)."""
    name = graph.producer.get(tensor)
    if name is None or depth == 0 or name in graph.constant:
        return None
    node = graph.nodes[name]
    if node.op_type in GLOBAL_POOLS and node.input and node.input[0] == source:
        return [name]
    step = 0 if node.op_type in _QDQ else 1      # a QDQ file's pairs do not count towards the depth
    for t in graph.inputs(name):
        if t in graph.initializers:
            continue
        sub = _path_to_pool(graph, t, source, depth - step)
        if sub:
            return sub + [name]
    return None


def categorise(graph: OnnxGraph, members, se: set[str], op_type: str = "", roles: dict | None = None) -> str:
    """One category for a layer from its exported members (a fused SE conv is SE, a conv with a
    fused activation is conv...); backend helpers by their own op type. ``roles`` (profile.roles)
    name a detector's head, fusion and resample nodes: a layer with a head node is head; fusion and
    resample come after the convolutions (ONNX Runtime folds a fusion weight into the conv before it:
    that layer is the conv's), before the other kinds."""
    if not members:
        if op_type in REFORMAT or "reorder" in op_type.lower() or "reformat" in op_type.lower() \
                or "copy" in op_type.lower() or "shuffle" in op_type.lower():
            return "reformat/copy"
        return "other"
    ops = [graph.nodes[m].op_type for m in members]
    held = {roles[m] for m in members if m in roles} if roles else set()
    if any(m in se for m in members):
        return "SE"
    if "head" in held:
        return "head"
    if any(is_depthwise(graph, m) for m in members):
        return "depthwise conv"
    for cat, kinds in (("conv", {"Conv", "ConvTranspose"}), ("linear", {"Gemm", "MatMul"}), ("fusion", ()),
                       ("resample", ()), ("pooling", POOLS), ("normalization", NORMS), ("activation", ACTIVATIONS)):
        if cat in held or any(o in kinds for o in ops):
            return cat
    if "Sigmoid" in ops or ("Mul" in ops and _is_swish(graph, members)):
        return "activation"
    if any(o in ELEMENTWISE for o in ops):
        return "elementwise"
    if all(o in REFORMAT for o in ops):
        return "reformat/copy"
    return "other"


def _is_swish(graph: OnnxGraph, members) -> bool:
    for m in members:
        node = graph.nodes[m]
        if node.op_type == "Mul":
            prods = [_through_qdq(graph, graph.producer.get(t)) for t in node.input]
            if any(p and graph.nodes[p].op_type == "Sigmoid" for p in prods):
                return True
    return False


def _through_qdq(graph: OnnxGraph, name: str | None) -> str | None:
    """The node a QDQ file's Quantize/DequantizeLinear chain starts from (``name`` itself otherwise)."""
    while name is not None and graph.nodes[name].op_type in _QDQ:
        name = graph.producer.get(graph.nodes[name].input[0])
    return name
