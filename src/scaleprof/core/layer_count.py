"""The layer count: how many layers a network executes per inference, by kind (conv, linear,
elementwise, other), from the operations its forward pass calls (PyTorch functions, ONNX nodes).

At batch 1 on a GPU, latency follows how many kernels are launched more than how much arithmetic
they do; flops, params and acts do not count them, this does. The count approximates what an
inference engine runs:

- BatchNorm is folded into the conv before it (exported graphs and engines do so): it adds 0; so
  do a QDQ file's Quantize/DequantizeLinear nodes (fused into the op they surround).
- Views and metadata (reshape, flatten, permute, shape queries, dropout at inference) add 0.
- Everything else is one layer: conv, linear (matmul, gemm), elementwise (activations, adds, SE
  gating multiplies) or other (pooling, reductions, concatenation, copies, padding).

A PyTorch count and an ONNX count of one network can differ a little: the exporter writes some
functions as several nodes (SiLU as Sigmoid and Mul). Engines fuse more (TensorRT, ORT's fusions);
where an engine reports its own layers, the layer profile has those.
"""

from __future__ import annotations

KINDS = ("conv", "linear", "elementwise", "other")

_CONV = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv",
         "convtranspose", "convolution"}
_LINEAR = {"linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "gemm", "einsum"}
_ELEMENTWISE = {"add", "sub", "mul", "div", "true_divide", "truediv", "pow", "neg", "abs", "exp", "log",
                "sqrt", "rsqrt", "reciprocal", "erf", "where", "clamp", "clip", "min", "max", "maximum",
                "minimum", "relu", "relu6", "silu", "swish", "sigmoid", "hardsigmoid", "hard_sigmoid", "hardswish",
                "hard_swish", "gelu", "tanh", "elu", "selu", "celu", "leaky_relu", "leakyrelu", "prelu",
                "hardtanh", "mish", "softplus", "layer_norm", "layernormalization", "group_norm",
                "groupnormalization", "instance_norm", "instancenormalization"}
_FOLDED = {"batch_norm", "batchnormalization"}
# A QDQ file's Quantize/DequantizeLinear pairs mark the precision of the op they surround; engines
# fuse them into it (TensorRT always; ONNX Runtime's CPU EP where it has an integer kernel).
_QDQ = {"quantizelinear", "dequantizelinear", "quantize_per_tensor", "dequantize"}
_FREE = {"get", "size", "dim", "numel", "assert", "empty", "zeros", "ones", "view", "view_as", "reshape",
         "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "t", "expand",
         "expand_as", "getitem", "split", "chunk", "narrow", "unbind", "dropout", "dropout2d", "identity",
         "to", "type", "type_as", "float", "half", "detach", "shape", "constant", "constantofshape",
         "cast", "is_floating_point", "is_complex", "requires_grad_", "contiguous_format", "stride",
         "storage_offset", "data_ptr", "element_size", "len", "iter", "format", "repr", "bool", "int",
         "eq", "ne", "ge", "gt", "le", "lt", "is_contiguous", "range", "arange"}
_ALIASES = {"iadd": "add", "radd": "add", "isub": "sub", "rsub": "sub", "imul": "mul", "rmul": "mul",
            "itruediv": "div", "rtruediv": "div", "idiv": "div", "rdiv": "div", "ipow": "pow", "rpow": "pow"}


def op_kind(op: str) -> str | None:
    """The kind of one operation (a PyTorch function name or an ONNX op type): one of KINDS, or None
    for what executes no layer (views, metadata, BatchNorm folded into its conv)."""
    name = op.lower().strip("_")
    if name.endswith("_") and name[:-1] in _ELEMENTWISE | _CONV | _LINEAR | _FREE:
        name = name[:-1]          # in-place variants (relu_, add_)
    name = _ALIASES.get(name, name)
    if name in _FREE or name in _FOLDED or name in _QDQ:
        return None
    if name in _CONV:
        return "conv"
    if name in _LINEAR:
        return "linear"
    if name in _ELEMENTWISE:
        return "elementwise"
    return "other"


def tally(ops) -> dict[str, int]:
    """Executed layers per kind of a sequence of operation names, every kind present (0 if none)."""
    out = dict.fromkeys(KINDS, 0)
    for op in ops:
        kind = op_kind(op)
        if kind is not None:
            out[kind] += 1
    return out

