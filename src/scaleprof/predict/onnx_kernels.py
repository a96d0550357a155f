"""The kernels a runtime executes for an ONNX file, with the features the kernel model reads.

ONNX Runtime decides its kernels when it optimises the graph (constant folding, BatchNorm folding,
activation and residual-add fusion into convolutions, NCHWc blocked layouts with their reorders,
GELU/LayerNorm fusions); ``optimized_graph`` asks it to do so for the target's thread count and
optimisation level and write the result (the weights go to a side file, never read back), so each
node of that graph is one kernel as it will run. TensorRT fuses differently (conv + bias + activation
+ residual into one layer, pooling and reformats kept); this module reads ORT's graph only.

A kernel's features: the op as it runs, its kind (the model's class), kernel size, stride, groups,
channels in/out, spatial positions in/out, multiply-accumulates, bytes read (maps and weights) and
written, arithmetic intensity and what was fused into it.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scaleprof.core.onnx_file import graph_inputs, load_model
from scaleprof.core.text import first_line
from scaleprof.engines.ort import session_options
from scaleprof.errors import BadInput
from scaleprof.predict.graph_shapes import attributes, propagate

ELEMENT_BYTES = {"fp32": 4, "fp16": 2}
KINDS = ("conv", "depthwise conv", "grouped conv", "linear", "pooling", "global pooling", "elementwise",
         "normalization", "layout", "view")
_CONVS = {"Conv", "FusedConv", "ConvTranspose"}
_LINEAR = {"Gemm", "FusedGemm", "MatMul", "FusedMatMul"}
_POOLS = {"MaxPool", "AveragePool", "LpPool"}
_GLOBAL = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceL2"}
_LAYOUT = {"ReorderInput", "ReorderOutput", "Transpose", "Concat", "Split", "Slice", "Pad", "Resize",
           "Upsample", "Expand", "Tile", "Gather", "DepthToSpace", "SpaceToDepth"}
_NORMS = {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization", "BatchNormalization",
          "InstanceNormalization", "GroupNorm", "GroupNormalization", "Softmax", "LogSoftmax", "LRN"}
_VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Constant"}
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Gelu",
                "FastGelu", "BiasGelu", "QuickGelu", "Erf", "Tanh", "Exp", "Log", "Sqrt", "Pow", "LeakyRelu",
                "Max", "Min", "Neg", "Abs", "Where", "Softplus", "Mish", "Elu", "Selu", "PRelu", "Reciprocal",
                "Cast", "Sum", "BiasAdd", "Swish", "ThresholdedRelu", "Celu", "Floor", "Ceil", "Round"}
# ORT's fused variants run the same kernel plus an activation (their fusions are features)
_SAME_KERNEL = {"ms.FusedGemm": "Gemm", "ms.FusedMatMul": "MatMul"}
# per output element, roughly, of the ops whose work is not multiply-accumulates
_NORM_WORK = 6


@dataclass(frozen=True)
class Kernel:
    """One node of the optimised graph: one kernel as the runtime runs it (all counts for the batch)."""

    name: str
    op: str                      # as it runs, domain-qualified where ORT's own ("nchwc.Conv", "ms.Gelu")
    kind: str                    # one of KINDS, or "other"
    kernel: int = 0
    stride: int = 1
    groups: int = 1
    channels_in: int = 0
    channels_out: int = 0
    size_in: int = 0             # spatial positions of the input map (H x W), 1 for a vector
    size_out: int = 0
    batch: int = 1
    flops: int = 0               # multiply-accumulates (the work of the non-arithmetic kinds: elements touched)
    bytes_read: int = 0          # maps and weights
    bytes_written: int = 0
    fused: tuple = ()            # what ORT fused into it (activation, residual add)

    @property
    def key(self) -> str:
        """What the kernel model fits separately: the kind and the implementation that runs it."""
        if self.kind in ("conv", "depthwise conv", "grouped conv", "pooling", "global pooling"):
            return f"{self.kind}/{'nchwc' if self.op.startswith('nchwc.') else 'nchw'}"
        return f"{self.kind}/{_SAME_KERNEL.get(self.op, self.op.rpartition('.')[2])}"

    @property
    def intensity(self) -> float:
        return self.flops / max(self.bytes_read + self.bytes_written, 1)

    @property
    def work(self) -> float:
        """Its share of the network's work, as warnings weigh it: multiply-accumulates plus bytes moved."""
        return float(self.flops + self.bytes_read + self.bytes_written)

    def to_dict(self) -> dict:
        return {**asdict(self), "fused": list(self.fused), "key": self.key, "intensity": self.intensity}


def kind_of(op: str, groups: int = 1, channels_in: int = 0) -> str:
    if op in _CONVS:
        if groups > 1 and groups == channels_in:
            return "depthwise conv"
        return "grouped conv" if groups > 1 else "conv"
    for kind, ops in (("linear", _LINEAR), ("pooling", _POOLS), ("global pooling", _GLOBAL), ("layout", _LAYOUT),
                      ("normalization", _NORMS), ("view", _VIEWS), ("elementwise", _ELEMENTWISE)):
        if op in ops:
            return kind
    return "other"


def _qualified(node) -> str:
    domain = {"": "", "ai.onnx": "", "com.microsoft": "ms.", "com.microsoft.nchwc": "nchwc."}.get(node.domain,
                                                                                              node.domain + ".")
    return domain + node.op_type


def _fused(node, a: dict) -> tuple:
    found = []
    activation = a.get("activation")
    if activation:
        found.append(activation.decode() if isinstance(activation, bytes) else str(activation))
    if node.op_type in ("Conv", "FusedConv") and len(node.input) > 3 and node.input[3]:
        found.append("Add")
    return tuple(found)


def node_kernel(node, shapes: dict, constant: set, element_bytes: int) -> Kernel:
    """The Kernel of one optimised node, from the tensor shapes around it."""
    a = attributes(node)
    ins = [shapes.get(n, ()) if n else () for n in node.input]
    outs = [shapes.get(n, ()) for n in node.output if n]
    x, y = (ins[0] if ins else ()), (outs[0] if outs else ())
    maps_in = sum(math.prod(s) for n, s in zip(node.input, ins) if n and n not in constant)
    weights = sum(math.prod(s) for n, s in zip(node.input, ins) if n and n in constant)
    written = sum(math.prod(s) for s in outs)
    groups = int(a.get("group", 1))
    channels_in = x[1] if len(x) > 1 else (x[-1] if x else 0)
    if node.op_type in _CONVS and len(ins) > 1 and len(ins[1]) > 1:
        channels_in = ins[1][1] * groups          # NCHWc kernels compute the blocked (padded) channels
    channels_out = y[1] if len(y) > 1 else (y[-1] if y else 0)
    kernel_shape = list(a.get("kernel_shape") or (ins[1][2:] if node.op_type in _CONVS and len(ins) > 1 else []))
    kind = kind_of(node.op_type, groups, channels_in)
    if kind in ("linear",) and len(x) >= 2:
        channels_in, channels_out = x[-1], y[-1] if y else 0
    if kind == "view":
        maps_in = weights = written = 0
    flops = _work(node.op_type, kind, x, y, ins, kernel_shape, groups, a)
    return Kernel(name=node.name or node.output[0], op=_qualified(node), kind=kind,
                  kernel=int(kernel_shape[0]) if kernel_shape else 0,
                  stride=int((a.get("strides") or [1])[0]), groups=groups,
                  channels_in=int(channels_in), channels_out=int(channels_out),
                  size_in=int(math.prod(x[2:])) if len(x) > 2 else 1,
                  size_out=int(math.prod(y[2:])) if len(y) > 2 else 1, batch=int(x[0]) if x else 1,
                  flops=int(flops), bytes_read=int((maps_in + weights) * element_bytes),
                  bytes_written=int(written * element_bytes), fused=_fused(node, a))


def _work(op, kind, x, y, ins, kernel_shape, groups, a) -> int:
    out = math.prod(y) if y else 0
    if kind in ("conv", "depthwise conv", "grouped conv"):
        return out * ins[1][1] * math.prod(kernel_shape)
    if kind == "linear":
        inner = x[0] if a.get("transA") and op in ("Gemm", "FusedGemm") else x[-1]
        return out * inner
    if kind == "pooling":
        return out * math.prod(kernel_shape)
    if kind == "global pooling":
        return math.prod(x) if x else 0
    if kind == "normalization":
        return _NORM_WORK * out
    if kind in ("elementwise", "layout", "other"):
        return out
    return 0


def _declared_shape(model) -> tuple:
    dims = graph_inputs(model)[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _input_shape(model, batch: int | None, resolution: int | None) -> tuple:
    inputs = graph_inputs(model)
    if not inputs:
        raise BadInput("the ONNX file has no input")
    dims = inputs[0].type.tensor_type.shape.dim
    fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(fixed) != 4 or not fixed[1]:
        raise BadInput(f"input {inputs[0].name!r} is not an image batch of fixed rank (N, C, H, W with C known): "
                       f"shape {[d.dim_value or d.dim_param or '?' for d in dims]}")
    height, width = fixed[2], fixed[3]
    if resolution is not None:
        height = width = int(resolution)
    if not height or not width:
        raise BadInput(f"input {inputs[0].name!r} has no fixed height and width: pass --resolution R")
    return (int(batch or fixed[0] or 1), int(fixed[1]), int(height), int(width))


def _with_input_shape(model, shape: tuple):
    """The model with its image input set to ``shape`` (other recorded shapes dropped: ORT re-infers them)."""
    dims = graph_inputs(model)[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, shape):
        dim.Clear()
        dim.dim_value = int(value)
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    return model


def optimized_graph(path, threads: int | None = 1, level: str = "all", batch: int | None = None,
                    resolution: int | None = None) -> tuple:
    """(optimised onnx.ModelProto without weights, the input shape) of an ONNX file as ONNX Runtime's CPU
    execution provider would run it. Neither scaleprof nor ORT copies the weights: the graph is read
    without them (they stay references into the file, which ORT maps), ORT is asked not to prepack them,
    and the optimised graph's weights are written to the null device (nothing reads them back)."""
    import onnx
    import onnxruntime

    model = load_model(path, load_weights=False)
    shape = _input_shape(model, batch, resolution)
    if shape != _declared_shape(model):
        model = _with_input_shape(model, shape)
    with tempfile.TemporaryDirectory(prefix="scaleprof-kernels-") as work:
        so = session_options(threads, level)
        so.optimized_model_filepath = str(Path(work) / "optimized.onnx")
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights.bin")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        so.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                    str(Path(path).resolve().parent))
        so.add_session_config_entry("session.disable_prepacking", "1")
        try:
            (Path(work) / "weights.bin").symlink_to(os.devnull)
        except OSError:
            pass                              # no symlinks here: ORT writes the file, which is only slower
        try:
            onnxruntime.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception as err:    # ORT raises its own Fail/InvalidGraph/NotImplemented types
            raise BadInput(f"{path}: ONNX Runtime cannot load it at input {shape}: {first_line(err)}") from None
        optimized = onnx.load(so.optimized_model_filepath, load_external_data=False)
    return optimized, shape


@dataclass(frozen=True)
class KernelGraph:
    """The kernels of one network at one input shape, in execution order."""

    kernels: tuple = ()
    input_shape: tuple = ()
    precision: str = "fp32"
    source: str = ""
    notes: tuple = field(default_factory=tuple)

    @property
    def flops(self) -> int:
        return sum(k.flops for k in self.kernels if k.kind in ("conv", "depthwise conv", "grouped conv", "linear"))


def graph_kernels(optimized, input_shape: tuple, precision: str = "fp32", source: str = "") -> KernelGraph:
    """The KernelGraph of an optimised model (as optimized_graph returns it)."""
    shapes = propagate(optimized, input_shape)
    constant = {t.name for t in optimized.graph.initializer} | {o for n in optimized.graph.node
                                                                if n.op_type == "Constant" for o in n.output}
    size = ELEMENT_BYTES.get(precision, 4)
    kernels = tuple(node_kernel(node, shapes, constant, size) for node in optimized.graph.node
                    if node.op_type != "Constant")
    return KernelGraph(kernels=kernels, input_shape=tuple(input_shape), precision=precision, source=str(source))


def file_kernels(path, threads: int | None = 1, level: str = "all", batch: int | None = None,
                 resolution: int | None = None) -> KernelGraph:
    """The kernels ONNX Runtime would run for the ONNX file at ``path``."""
    optimized, shape = optimized_graph(path, threads, level, batch, resolution)
    elem = optimized.graph.input[0].type.tensor_type.elem_type
    return graph_kernels(optimized, shape, "fp16" if elem == 10 else "fp32", str(path))
