"""How much memory one inference of an ONNX graph needs, from the graph alone (no tensor is made).

ONNX shape inference gives every intermediate tensor its shape at the input asked for; walking the
nodes in their (topological) order, each output is allocated when its node runs and freed after its
last reader, as a runtime's memory planner does. The peak of what is alive at once (times what a
runtime holds besides, RUNTIME_FACTOR), plus the weights and the input, is the estimate: it sees every tensor (a Resize that grows the picture x16,
a Concat, an Add), not only the counted layers' outputs.

The activations of a convolutional network grow with the pixels of its input, so one estimate at a
known resolution says what any batch and resolution needs (``MemoryEstimate.bytes_at``): an engine
records it in its manifest, and the bound still holds once the ONNX file it came from has moved.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scaleprof.complexity.onnx_count import _infer_shapes
from scaleprof.core.limits import check_fits
from scaleprof.core.onnx_file import image_input, load_model
from scaleprof.errors import BadInput

# What a runtime holds beyond the live tensors of the graph: ONNX Runtime's CPU provider copies
# activations into its blocked (NCHWc) layout around each conv and keeps im2col buffers and an arena.
# Measured peak RSS less the process's own, against the live tensors: 2.2x for RegNetX-200MF at
# 1024 px (batch 8 and 16), 1.1x for a bare x16 Resize.
RUNTIME_FACTOR = 2.5


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int              # every initializer and Constant, at its stored element type
    input_bytes_per_pixel: float    # one image's input, per pixel of its resolution squared
    peak_bytes_per_pixel: float     # one image's peak of live intermediate tensors, per pixel

    def bytes_at(self, batch: int, resolution: int) -> int:
        """Weights, plus the batch's input and peak activations (times RUNTIME_FACTOR) at ``resolution``."""
        pixels = int(batch) * int(resolution) ** 2
        return int(self.weights_bytes + pixels * (self.input_bytes_per_pixel
                                                  + RUNTIME_FACTOR * self.peak_bytes_per_pixel))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> "MemoryEstimate":
        """The estimate an engine manifest recorded; BadInput for anything else (a hand-edited one)."""
        fields = ("weights_bytes", "input_bytes_per_pixel", "peak_bytes_per_pixel")
        if not isinstance(data, dict) or set(data) != set(fields) or not all(
                type(data[f]) in (int, float) and math.isfinite(data[f]) and data[f] >= 0 for f in fields):
            raise BadInput(f"the engine's recorded memory estimate {str(data)[:80]} is not three "
                           "non-negative numbers; rebuild the engine")
        return cls(int(data["weights_bytes"]), float(data["input_bytes_per_pixel"]),
                   float(data["peak_bytes_per_pixel"]))


def estimate_memory(model, resolution: int) -> MemoryEstimate:
    """The MemoryEstimate of an ONNX model (path or ModelProto, weights loaded or not) with one image
    input (N, C, H, W), from shape inference at batch 1 and ``resolution`` (its own static one where
    the input is static). BadInput for a file that is not such a model."""
    if not hasattr(model, "graph"):
        model = load_model(model, load_weights=False)
    name, dims = image_input(model)
    h = dims[2] if isinstance(dims[2], int) else resolution
    w = dims[3] if isinstance(dims[3], int) else resolution
    shapes, _ = _infer_shapes(model, name, (1, dims[1], h, w))
    sizes = _element_sizes(model)
    pixels = h * w
    input_bytes = math.prod((dims[1], h, w)) * sizes.get(name, 4)
    return MemoryEstimate(weights_bytes=_weights_bytes(model),
                          input_bytes_per_pixel=input_bytes / pixels,
                          peak_bytes_per_pixel=_peak_activation_bytes(model, shapes, sizes) / pixels)


def _weights_bytes(model) -> int:
    from onnx import helper

    total = 0
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node if n.op_type == "Constant"
                                               for a in n.attribute if a.name == "value"]
    for t in tensors:
        total += math.prod(t.dims) * _itemsize(helper, t.data_type)
    return total


def _itemsize(helper, elem_type: int) -> int:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except (KeyError, TypeError, ValueError):
        return 4


def _element_sizes(model) -> dict[str, int]:
    """Tensor name -> bytes per element, from the types shape inference and the graph declare."""
    import onnx
    from onnx import helper

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:               # shapes were inferred once already; types default to 4 bytes
        inferred = model
    graph = inferred.graph
    return {v.name: _itemsize(helper, v.type.tensor_type.elem_type)
            for v in list(graph.input) + list(graph.value_info) + list(graph.output)
            if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type}


def _peak_activation_bytes(model, shapes: dict, sizes: dict) -> int:
    """The most bytes of intermediate tensors alive at once, nodes run in graph order: a tensor lives
    from its node to its last reader (graph outputs to the end). A tensor whose shape inference could
    not give is taken as large as its node's largest input (most such nodes are elementwise)."""
    constants = {i.name for i in model.graph.initializer}
    last_use = {}
    for index, node in enumerate(model.graph.node):
        for name in node.input:
            last_use[name] = index
    outputs = {o.name for o in model.graph.output}
    size_of: dict[str, int] = {}
    live = peak = 0
    for index, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            continue                                    # counted with the weights
        known = [size_of.get(i, 0) for i in node.input if i and i not in constants]
        for name in node.output:
            if not name:
                continue
            shape = shapes.get(name)
            size_of[name] = (math.prod(shape) * sizes.get(name, 4) if shape is not None
                             else max(known, default=0))
            live += size_of[name]
        peak = max(peak, live)
        for name in set(node.input) | set(node.output):
            if name in size_of and last_use.get(name, -1) <= index and name not in outputs:
                live -= size_of.pop(name)
    return peak


def check_memory(estimate: MemoryEstimate, batch: int, resolution: int, what: str) -> None:
    """BadInput when ``estimate`` at ``batch`` x ``resolution`` needs more than this machine allows."""
    check_fits(estimate.bytes_at(batch, resolution), what)


def require_estimate(model, resolution: int) -> MemoryEstimate:
    """``estimate_memory``; a graph whose shapes cannot be inferred is refused, since what it would
    allocate cannot be bounded."""
    try:
        return estimate_memory(model, resolution)
    except BadInput as err:
        raise BadInput(f"cannot bound the memory this model needs: {err}") from None
