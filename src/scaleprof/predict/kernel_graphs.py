"""Small ONNX graphs for kernel calibration: single kernels and short chains as exporters write them
(conv + bias + activation, conv + residual add + ReLU, squeeze-and-excitation, GELU as Erf, channel
shuffle), sampled over the shapes CNNs use. Each generator draws one graph from a numpy Generator:
(name, onnx.ModelProto, {input name: shape}).

Shapes: channels 8..2048 (log-uniform, most of them multiples of 8 as networks use, some not: they
take ONNX Runtime's non-blocked kernels), maps 7..512 px with channels x positions in the range real
feature maps span, kernels 1/3/5/7, strides 1/2, dense, depthwise and grouped convolutions.
"""

from __future__ import annotations

import math

OPSET = 17
MIN_ELEMENTS, MAX_ELEMENTS = 2 ** 11, 2 ** 22          # channels x positions of a feature map
MAX_MACS = 6e8                                         # keeps one timed run under ~50 ms on one core
SIZES = (7, 8, 13, 14, 27, 28, 32, 55, 56, 64, 112, 128, 224, 256, 512)


def _helper():
    import onnx

    return onnx, onnx.helper, onnx.numpy_helper


def channels(rng, low: int = 8, high: int = 2048) -> int:
    value = 2 ** rng.uniform(math.log2(low), math.log2(high))
    return max(low, int(round(value / 8) * 8) if rng.random() < 0.75 else int(round(value)))


def map_size(rng, c: int) -> int:
    fitting = [s for s in SIZES if MIN_ELEMENTS <= c * s * s <= MAX_ELEMENTS] or [7]
    return int(rng.choice(fitting))


def _model(nodes, inputs: dict, outputs: list, weights: dict):
    onnx, helper, numpy_helper = _helper()
    for i, node in enumerate(nodes):
        node.name = node.name or f"{node.op_type}_{i}"        # the profiler names kernels by node
    graph = helper.make_graph(
        nodes, "kernel", [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, n) for n, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def _weights(rng, *shape):
    return (rng.standard_normal(shape) * 0.05).astype("float32")


def _activation(helper, name: str, x: str, out: str, weights: dict) -> list:
    if name == "Relu":
        return [helper.make_node("Relu", [x], [out])]
    if name == "Clip":
        import numpy as np

        weights["lo"], weights["hi"] = np.array(0, "float32"), np.array(6, "float32")
        return [helper.make_node("Clip", [x, "lo", "hi"], [out])]
    if name == "SiLU":
        return [helper.make_node("Sigmoid", [x], [out + "_s"]), helper.make_node("Mul", [x, out + "_s"], [out])]
    return [helper.make_node(name, [x], [out])]          # HardSwish, Sigmoid, HardSigmoid


def _stem(rng) -> tuple:
    """(k, stride, channels in, channels out, map): the first conv of a network, on the image itself."""
    k, stride = [(3, 2), (7, 2), (3, 1), (4, 4), (11, 4), (5, 2)][int(rng.choice(6, p=[0.4, 0.25, 0.1, 0.1, 0.05, 0.1]))]
    return k, stride, 3, channels(rng, 16, 96), int(rng.choice([224, 227, 256, 299, 320, 384, 448, 512]))


def conv(rng):
    _, helper, _ = _helper()
    mode = rng.choice(["dense", "depthwise", "grouped", "stem"], p=[0.5, 0.25, 0.17, 0.08])
    k = int(rng.choice([1, 3, 5, 7], p=[0.35, 0.4, 0.15, 0.1] if mode == "dense" else [0.05, 0.6, 0.25, 0.1]))
    stride = int(rng.choice([1, 2], p=[0.75, 0.25]))
    cin = channels(rng)
    if mode == "stem":
        k, stride, cin, cout, h = _stem(rng)
        groups = 1
    elif mode == "depthwise":
        cout, groups = cin, cin
    elif mode == "grouped":
        per_group = int(rng.choice([4, 8, 16, 32, 64]))
        groups = max(1, cin // per_group)
        cin = groups * per_group
        cout = cin if rng.random() < 0.7 else groups * max(1, int(round(per_group * 2 ** rng.uniform(-1, 1))))
    else:
        cout, groups = channels(rng), 1
    h = h if mode == "stem" else map_size(rng, max(cin, cout))
    out_h = (h + 2 * (k // 2) - k) // stride + 1
    macs = cout * out_h * out_h * (cin // groups) * k * k
    while macs > MAX_MACS and h > 7:
        h, out_h = h // 2, max(1, (h // 2 + 2 * (k // 2) - k) // stride + 1)
        macs = cout * out_h * out_h * (cin // groups) * k * k
    weights = {"w": _weights(rng, cout, cin // groups, k, k), "b": _weights(rng, cout)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[stride] * 2,
                              pads=[k // 2] * 4, group=groups)]
    inputs, last = {"x": (1, cin, h, h)}, "c"
    if rng.random() < 0.25:
        inputs["skip"] = (1, cout, out_h, out_h)
        nodes.append(helper.make_node("Add", ["c", "skip"], ["r"]))
        last = "r"
    act = rng.choice(["none", "Relu", "Clip", "HardSwish", "SiLU"], p=[0.3, 0.35, 0.2, 0.1, 0.05])
    if act != "none":
        nodes += _activation(helper, str(act), last, "y", weights)
        last = "y"
    return f"conv {mode} k{k} s{stride}", _model(nodes, inputs, [last], weights), inputs


def _lead(rng, helper, c: int, h: int, weights: dict) -> tuple[list, dict]:
    """Half the time a map comes out of a 1x1 conv (blocked layout, as inside a network), else from the input."""
    if rng.random() < 0.5:
        return [], {"x": (1, c, h, h)}
    weights["lw"] = _weights(rng, c, c, 1, 1)
    return [helper.make_node("Conv", ["x0", "lw"], ["x"], kernel_shape=[1, 1])], {"x0": (1, c, h, h)}


def pool(rng):
    _, helper, _ = _helper()
    c = channels(rng, 8, 1024)
    h = map_size(rng, c)
    weights: dict = {}
    nodes, inputs = _lead(rng, helper, c, h, weights)
    op = str(rng.choice(["MaxPool", "AveragePool"], p=[0.7, 0.3]))
    k = int(rng.choice([2, 3, 5], p=[0.35, 0.55, 0.1]))
    stride = int(rng.choice([1, 2], p=[0.2, 0.8]))
    pad = int(rng.choice([0, k // 2])) if k > 2 else 0
    nodes.append(helper.make_node(op, ["x"], ["y"], kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4,
                                  ceil_mode=int(rng.random() < 0.3)))
    return f"{op} k{k}", _model(nodes, inputs, ["y"], weights), inputs


def global_pool(rng):
    _, helper, _ = _helper()
    c = channels(rng, 16, 2048)
    h = int(rng.choice([s for s in SIZES if s <= 56] + [1, 2, 4]))
    weights: dict = {}
    nodes, inputs = _lead(rng, helper, c, h, weights)
    if rng.random() < 0.7:
        nodes.append(helper.make_node("GlobalAveragePool", ["x"], ["y"]))
    else:
        nodes.append(helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=int(rng.random() < 0.5)))
    return "global pool", _model(nodes, inputs, ["y"], weights), inputs


def linear(rng):
    _, helper, _ = _helper()
    k_in, k_out = channels(rng, 16, 4096), channels(rng, 16, 4096)
    weights = {"w": _weights(rng, k_in, k_out), "b": _weights(rng, k_out)}
    big = rng.random() < 0.15                       # a large classifier (VGG, AlexNet): weights stream from memory
    if big:
        k_out = int(rng.choice([1000, 2048, 4096]))
        k_in = min(int(rng.choice([4096, 9216, 12544, 25088])), int(3e7) // k_out)
        weights = {"w": _weights(rng, k_in, k_out), "b": _weights(rng, k_out)}
    if big or rng.random() < 0.5:                   # classifier: (N, K) x (K, M)
        rows = int(rng.choice([1, 1, 2, 4, 8]))
        inputs = {"x": (rows, k_in)}
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"])]
    else:                                           # pointwise on an NHWC map (ConvNeXt, MLP blocks)
        k_in, k_out = min(k_in, 1024), min(k_out, 4096)
        weights = {"w": _weights(rng, k_in, k_out), "b": _weights(rng, k_out)}
        h = map_size(rng, max(k_in, k_out))
        while h > 7 and h * h * k_in * k_out > MAX_MACS:
            h //= 2
        inputs = {"x": (1, h, h, k_in)}
        nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["g"])]
    last = "g"
    if rng.random() < 0.3:
        nodes.append(helper.make_node("Relu", ["g"], ["y"]))
        last = "y"
    return "linear", _model(nodes, inputs, [last], weights), inputs


def elementwise(rng):
    import numpy as np

    _, helper, _ = _helper()
    c = channels(rng, 8, 1024)
    h = map_size(rng, c)
    weights: dict = {}
    nodes, inputs = _lead(rng, helper, c, h, weights)
    op = str(rng.choice(["Add", "Mul", "Gate", "HardSwish", "HardSigmoid", "Sigmoid", "Relu", "Clip", "GELU"]))
    if op in ("Add", "Mul"):
        inputs["z"] = (1, c, h, h)
        nodes.append(helper.make_node(op, ["x", "z"], ["y"]))
    elif op == "Gate":                              # squeeze-and-excitation's gating multiply
        inputs["z"] = (1, c, 1, 1)
        nodes.append(helper.make_node("Mul", ["x", "z"], ["y"]))
    elif op == "GELU":                              # as torch exports nn.GELU: x * 0.5 * (1 + erf(x / sqrt 2))
        weights.update(r2=np.array(math.sqrt(2), "float32"), one=np.array(1, "float32"),
                       half=np.array(0.5, "float32"))
        nodes += [helper.make_node("Div", ["x", "r2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                  helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
                  helper.make_node("Mul", ["m", "half"], ["y"])]
    else:
        nodes += _activation(helper, op, "x", "y", weights)
    return f"elementwise {op}", _model(nodes, inputs, ["y"], weights), inputs


def squeeze_excite(rng):
    _, helper, _ = _helper()
    c = channels(rng, 16, 1024)
    h = map_size(rng, c)
    mid = max(8, c // int(rng.choice([4, 16])))
    weights = {"w1": _weights(rng, mid, c, 1, 1), "b1": _weights(rng, mid), "w2": _weights(rng, c, mid, 1, 1),
               "b2": _weights(rng, c)}
    nodes, inputs = _lead(rng, helper, c, h, weights)
    gate = str(rng.choice(["Sigmoid", "HardSigmoid"]))
    nodes += [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
              helper.make_node("Conv", ["p", "w1", "b1"], ["q"], kernel_shape=[1, 1]),
              helper.make_node("Relu", ["q"], ["r"]),
              helper.make_node("Conv", ["r", "w2", "b2"], ["s"], kernel_shape=[1, 1]),
              helper.make_node(gate, ["s"], ["g"]), helper.make_node("Mul", ["x", "g"], ["y"])]
    return "squeeze-excite", _model(nodes, inputs, ["y"], weights), inputs


def normalization(rng):
    _, helper, _ = _helper()
    c = channels(rng, 16, 1024)
    h = map_size(rng, c)
    if rng.random() < 0.7:                         # LayerNorm over channels of an NHWC map (ConvNeXt)
        weights = {"g": _weights(rng, c), "b": _weights(rng, c)}
        inputs = {"x": (1, h, h, c)}
        nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-6)]
        return "layernorm", _model(nodes, inputs, ["y"], weights), inputs
    weights = {"g": _weights(rng, c) + 1, "b": _weights(rng, c), "m": _weights(rng, c), "v": abs(_weights(rng, c)) + 1}
    inputs = {"x": (1, c, h, h)}
    nodes = [helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["n"]),
             helper.make_node("Relu", ["n"], ["y"])]
    return "batchnorm", _model(nodes, inputs, ["y"], weights), inputs


def layout(rng):
    import numpy as np

    _, helper, _ = _helper()
    c = channels(rng, 8, 1024)
    h = map_size(rng, c)
    weights: dict = {}
    nodes, inputs = _lead(rng, helper, c, h, weights)
    op = str(rng.choice(["Transpose", "Concat", "Split", "Shuffle"]))
    if op == "Transpose":
        nodes.append(helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1]))
        outs = ["y"]
    elif op == "Concat":
        parts = int(rng.integers(2, 5))
        for i in range(1, parts):
            inputs[f"z{i}"] = (1, channels(rng, 8, 512), h, h)
        nodes.append(helper.make_node("Concat", ["x"] + [f"z{i}" for i in range(1, parts)], ["y"], axis=1))
        outs = ["y"]
    elif op == "Split":
        c = c + c % 2
        inputs = {"x": (1, c, h, h)} if "x" in inputs else {"x0": (1, c, h, h)}
        if "lw" in weights:
            weights["lw"] = _weights(rng, c, c, 1, 1)
        weights["sp"] = np.array([c // 2, c // 2], "int64")
        nodes.append(helper.make_node("Split", ["x", "sp"], ["y", "y2"], axis=1))
        outs = ["y", "y2"]
    else:                                           # ShuffleNet's channel shuffle
        c = c + c % 2
        inputs = {"x": (1, c, h, h)} if "x" in inputs else {"x0": (1, c, h, h)}
        if "lw" in weights:
            weights["lw"] = _weights(rng, c, c, 1, 1)
        weights["s1"] = np.array([1, 2, c // 2, h, h], "int64")
        weights["s2"] = np.array([1, c, h, h], "int64")
        nodes += [helper.make_node("Reshape", ["x", "s1"], ["r"]),
                  helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
                  helper.make_node("Reshape", ["t", "s2"], ["y"])]
        outs = ["y"]
    return f"layout {op}", _model(nodes, inputs, outs, weights), inputs


# generator -> how much of a CNN's time its kernels take, roughly: where samples go before errors are known
GENERATORS = {conv: 6.0, linear: 1.0, pool: 1.0, global_pool: 0.7, elementwise: 1.2, squeeze_excite: 0.8,
              normalization: 0.8, layout: 1.2}
