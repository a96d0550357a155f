"""Tensor shapes through an ONNX Runtime optimised graph, from the graph alone.

ONNX's own shape inference stops at the nodes ORT writes into its own domains (NCHWc convolutions and
pools, ReorderInput/Output, FusedConv, FusedGemm, Gelu ...), so shapes are propagated here with one
rule per op kind. NCHWc tensors are kept as logical (N, C, H, W) shapes whose channel count is the
blocked (padded) count the kernel really computes. Views and shape-preserving ops follow the
broadcast of their inputs. A shape that cannot be known (a Reshape whose target is computed at run
time) is a BadInput naming the node.
"""

from __future__ import annotations

import math

from scaleprof.core.onnx_file import graph_inputs
from scaleprof.errors import BadInput

_CONVS = {"Conv", "FusedConv", "ConvTranspose"}
_POOLS = {"MaxPool", "AveragePool", "LpPool"}
_GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
_REDUCES = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL2", "ReduceL1"}
_SHAPE_OUTPUTS = {"Shape"}


def attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


SMALL = 4096                       # elements: constants read as values (shape ops' inputs); weights are not


def constants(model) -> dict:
    """Small initialisers and Constant nodes as numpy arrays (the int tensors shape ops read)."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
              if math.prod(t.dims) <= SMALL and not t.external_data}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            attrs = attributes(node)
            if "value" in attrs:
                values[node.output[0]] = numpy_helper.to_array(attrs["value"])
    return values


def _broadcast(shapes: list[tuple]) -> tuple:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        out.append(max(dims) if dims else 1)
    return tuple(out)


def _window(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    span = size + pad - dilation * (kernel - 1) - 1
    return (math.ceil(span / stride) if ceil else span // stride) + 1


def _spatial(x: tuple, a: dict, kernel: list) -> tuple:
    n = len(kernel)
    strides = list(a.get("strides") or [1] * n)
    dilations = list(a.get("dilations") or [1] * n)
    pads = list(a.get("pads") or [0] * (2 * n))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(math.ceil(x[2 + i] / strides[i]) for i in range(n))
    if auto == "VALID":
        pads = [0] * (2 * n)
    return tuple(_window(x[2 + i], kernel[i], strides[i], pads[i] + pads[i + n], dilations[i],
                         bool(a.get("ceil_mode", 0))) for i in range(n))


def _conv(x, w, a):
    kernel = list(a.get("kernel_shape") or w[2:])
    return (x[0], w[0], *_spatial(x, a, kernel))


def _gemm(a_shape, b_shape, a):
    m = a_shape[1] if a.get("transA") else a_shape[0]
    n = b_shape[0] if a.get("transB") else b_shape[1]
    return (m, n)


def _matmul(a_shape, b_shape):
    if len(b_shape) == 1:
        return a_shape[:-1]
    batch = _broadcast([a_shape[:-2], b_shape[:-2]])
    return (*batch, a_shape[-2] if len(a_shape) > 1 else 1, b_shape[-1])


def _reshape(x, target, allowzero=False):
    target = [int(v) for v in target]
    out = [x[i] if v == 0 and not allowzero and i < len(x) else v for i, v in enumerate(target)]
    if -1 in out:
        known = math.prod(v for v in out if v != -1)
        out[out.index(-1)] = math.prod(x) // max(known, 1)
    return tuple(out)


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _reduce(x, axes, keepdims):
    rank = len(x)
    axes = {_axis(int(v), rank) for v in axes} if axes is not None and len(axes) else set(range(rank))
    return tuple(1 if i in axes else d for i, d in enumerate(x) if keepdims or i not in axes)


def _slice(x, starts, ends, axes, steps):
    out = list(x)
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = list(steps) if steps is not None else [1] * len(starts)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = _axis(int(ax), len(x))
        out[ax] = len(range(*slice(int(s), int(e), int(st)).indices(x[ax])))
    return tuple(out)


def node_output_shapes(node, shapes: dict, values: dict) -> list[tuple]:
    """Shapes of one node's outputs, given its inputs' ``shapes`` and constant ``values``."""
    a = attributes(node)
    ins = [shapes.get(name) if name else None for name in node.input]
    x = ins[0] if ins else None
    value = _constant_reader(node, values)
    for rule in (_computed_shapes, _arranged_shapes):
        out = rule(node, a, x, ins, value)
        if out is not None:
            return out
    known = [s for s in ins if s is not None]
    return [_broadcast(known)] + [None] * (len(node.output) - 1)


def _constant_reader(node, values: dict):
    """``value(i)``: the constant that the node's input ``i`` names, as a list (None for an absent
    input); a BadInput when that input is computed at run time."""
    op = node.op_type

    def value(i):
        name = node.input[i] if len(node.input) > i else ""
        if not name:
            return None
        if name not in values:
            raise BadInput(f"node {node.name or op} ({op}) reads a shape computed at run time ({name}); "
                           "export the network with a fixed input size")
        return values[name].tolist()

    return value


def _computed_shapes(node, a: dict, x, ins: list, value) -> list[tuple] | None:
    """Ops whose output follows from a kernel, window, product, scale or reduction; None for the others."""
    op = node.op_type
    if op in _CONVS:
        return [_conv(x, ins[1], a)]
    if op in _POOLS:
        return [(x[0], x[1], *_spatial(x, a, list(a["kernel_shape"])))]
    if op in _GLOBAL_POOLS:
        return [(*x[:2], *([1] * (len(x) - 2)))]
    if op == "ReorderOutput":
        c = int(a.get("channels", x[1]))
        return [(x[0], *x[2:], c) if a.get("channels_last") else (x[0], c, *x[2:])]
    if op == "ReorderInput":
        return [(x[0], x[-1], *x[1:-1]) if a.get("channels_last") else x]
    if op in ("Gemm", "FusedGemm"):
        return [_gemm(x, ins[1], a)]
    if op in ("MatMul", "FusedMatMul"):
        return [_matmul(x, ins[1])]
    if op in ("Resize", "Upsample"):
        sizes = value(3) if len(node.input) > 3 else None
        if sizes:
            return [tuple(int(v) for v in sizes)]
        scales = a.get("scales") or value(2) or value(1)
        return [tuple(int(math.floor(d * s)) for d, s in zip(x, scales))]
    if op in _REDUCES:
        axes = a.get("axes") if "axes" in a else (value(1) if len(node.input) > 1 else None)
        return [_reduce(x, axes, int(a.get("keepdims", 1)))]
    return None


def _arranged_shapes(node, a: dict, x, ins: list, value) -> list[tuple] | None:
    """Ops that rearrange, cut, join or pad their input's elements; None for the others."""
    op = node.op_type
    if op == "Flatten":
        axis = _axis(int(a.get("axis", 1)), len(x))
        return [(math.prod(x[:axis]), math.prod(x[axis:]))]
    if op == "Reshape":
        return [_reshape(x, value(1), bool(a.get("allowzero", 0)))]
    if op == "Transpose":
        perm = a.get("perm") or list(reversed(range(len(x))))
        return [tuple(x[p] for p in perm)]
    if op == "Concat":
        axis = _axis(int(a["axis"]), len(x))
        return [tuple(sum(s[axis] for s in ins) if i == axis else d for i, d in enumerate(x))]
    if op == "Split":
        return _split(x, _axis(int(a.get("axis", 0)), len(x)), a.get("split") or value(1), len(node.output))
    if op == "Slice":
        return [_slice(x, value(1), value(2), value(3), value(4))]
    if op == "Pad":
        pads = value(1) if len(node.input) > 1 else a.get("pads")
        return [tuple(d + pads[i] + pads[i + len(x)] for i, d in enumerate(x))]
    if op in ("Squeeze", "Unsqueeze"):
        return [_squeeze(x, a.get("axes") if "axes" in a else value(1), op == "Squeeze")]
    if op in _SHAPE_OUTPUTS:
        return [(len(x),)]
    return None


def _split(x, axis: int, sizes, count: int) -> list[tuple]:
    """``count`` parts of equal size (the last one what is left) unless the ``sizes`` are given."""
    if sizes is None:
        sizes = [-(-x[axis] // count)] * (count - 1) + [x[axis] - -(-x[axis] // count) * (count - 1)]
    return [tuple(s if i == axis else d for i, d in enumerate(x)) for s in sizes]


def _squeeze(x, axes, squeeze: bool) -> tuple:
    if squeeze:
        drop = {_axis(int(v), len(x)) for v in axes} if axes else {i for i, d in enumerate(x) if d == 1}
        return tuple(d for i, d in enumerate(x) if i not in drop)
    out = list(x)
    for ax in sorted(_axis(int(v), len(x) + len(axes)) for v in axes):
        out.insert(ax, 1)
    return tuple(out)


def propagate(model, input_shape) -> dict:
    """Tensor name -> shape for every tensor of ``model``: ``input_shape`` is the first input's shape, or a
    dict of every input's shape by name."""
    values = constants(model)
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    shapes.update({name: tuple(int(d) for d in v.shape) for name, v in values.items()})
    given = input_shape if isinstance(input_shape, dict) else {graph_inputs(model)[0].name: input_shape}
    shapes.update({name: tuple(int(d) for d in shape) for name, shape in given.items()})
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        missing = [name for name in node.input if name and name not in shapes]
        if missing:
            raise BadInput(f"node {node.name or node.op_type} ({node.op_type}) reads {missing[0]}, which no "
                           "earlier node writes (the graph is not in execution order)")
        try:
            outs = node_output_shapes(node, shapes, values)
        except (TypeError, IndexError, KeyError, ValueError, ZeroDivisionError) as err:
            raise BadInput(f"cannot follow shapes through node {node.name or node.op_type} ({node.op_type}): "
                           f"{type(err).__name__}: {err}") from None
        for name, shape in zip(node.output, outs):
            if name and shape is not None:
                shapes[name] = tuple(int(d) for d in shape)
    return shapes
