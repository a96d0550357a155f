"""Reading ONNX files defensively: any stage learns what a file holds from the file alone.

Every problem with the file is a BadInput worded for the user, never a protobuf traceback.
scaleprof's own metadata (the keys below, JSON text) is read raw here; the export stage turns it
into a ModelSpec (scaleprof.export.read_metadata).
"""

from __future__ import annotations

import json
from pathlib import Path

from scaleprof.core.memory import check_fits
from scaleprof.core.onnx_wire import graph_without_weights
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput

# Element types scaleprof exports and builds engines for: the ONNX file's float type, or the type
# of its quantized tensors (a QDQ file: QuantizeLinear/DequantizeLinear pairs around float ops).
PRECISIONS = ("fp32", "fp16", "int8", "fp8")
QUANTIZED = ("int8", "fp8")             # fp8: E4M3 (FLOAT8E4M3FN), for TensorRT-family backends
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "int8": 1, "fp8": 1}
_QUANTIZED_TYPES = {2: "uint8", 3: "int8", 17: "fp8"}    # onnx.TensorProto UINT8, INT8, FLOAT8E4M3FN

# metadata_props keys written by export_onnx (all values are JSON text)
META_SPEC = "scaleprof.spec"          # ModelSpec.to_json()
META_COUNTS = "scaleprof.counts"      # predicted (PyTorch-side) totals per image at spec.resolution
META_EXPORT = "scaleprof.export"      # options, versions, parity figures, spatial constraints
META_VERSION = "scaleprof.version"

PARSE_EXPANSION = 3     # memory a parsed protobuf takes per byte of the file, at most (about)
TOO_LARGE = "a model too large for this machine"
INLINE_BYTES = 65536     # a tensor this small stays in the graph read without weights (shape ops read such)


def load_model(path, load_weights: bool = True):
    """onnx.ModelProto from ``path``; a missing, empty, truncated or non-ONNX file is a BadInput. Without
    ``load_weights`` the large embedded weights are not read either: they stay references into the file
    (onnx_wire), and the model holds the graph, the weights' names, types and shapes, and small tensors."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such ONNX file")
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: empty file, not an ONNX model")
    try:
        graph = None if load_weights else graph_without_weights(path, INLINE_BYTES)
    except ValueError:          # no binary protobuf: onnx's own reader says what the file is
        graph = None
    if graph is None:
        check_fits(PARSE_EXPANSION * path.stat().st_size, f"reading {path}", "the parsed ONNX file", TOO_LARGE)
    try:
        model = onnx.load_model_from_string(graph) if graph else onnx.load(str(path), load_external_data=False)
        external = 0 if graph else _external_bytes(model, path)
        if load_weights and external:
            check_fits(PARSE_EXPANSION * path.stat().st_size + external, f"reading {path} and its external data",
                       "the parsed ONNX file and its weights", TOO_LARGE)
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(model, str(path.parent))     # beside the model, wherever we run
    except BadInput:
        raise
    except OSError as err:
        raise BadInput(f"{path}: cannot read the ONNX file ({err.strerror or err})")
    except Exception as err:  # protobuf's binary, text and JSON parsers each raise their own error types
        raise BadInput(f"{path}: not a readable ONNX model (corrupt or truncated: {first_line(err)})")
    if not model.graph.node or not model.graph.input:
        raise BadInput(f"{path}: not a readable ONNX model (no graph: corrupt or truncated)")
    # A truncated protobuf often still parses up to the cut; the checker sees dangling references.
    # Given a model that still refers to its external data, the checker looks for those files in the
    # working directory; given the path, beside the model.
    if graph:
        _check_structure(_placeholder_weights(model, path.name), path)
    else:
        _check_structure(model if not external or load_weights else str(path), path)
    return model


def _placeholder_weights(model, location: str):
    """A copy of ``model`` for the checker, each weight that refers into the file itself (``location``)
    replaced by one element of its type: the checker would otherwise look for the file in the working
    directory, and the weights' bytes are not what it checks."""
    import onnx
    from onnx import helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:
        if any(e.key == "location" and e.value == location for e in tensor.external_data):
            tensor.ClearField("external_data")
            tensor.ClearField("data_location")
            del tensor.dims[:]
            tensor.dims.append(1)
            tensor.raw_data = bytes(helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize)
    return copy


def _external_bytes(model, path: Path) -> int:
    """Bytes of the external data files the model's initializers name (0: none)."""
    from onnx.external_data_helper import uses_external_data

    locations = {e.value for t in model.graph.initializer if uses_external_data(t)
                 for e in t.external_data if e.key == "location"}
    total = 0
    for location in locations:
        try:
            total += (path.parent / location).stat().st_size
        except OSError:
            total += 1                  # missing: onnx's own loader and checker say which
    return total


def _check_structure(model, path) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as err:
        raise BadInput(f"{path}: invalid ONNX model ({first_line(err)})")


def graph_inputs(model) -> list:
    """Real inputs (older exporters also list initializers as graph inputs)."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def dims_of(value_info) -> tuple:
    """Shape as a tuple: ints for known dims, the symbol (or '?') for unknown ones."""
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim)


def image_input(model, path="model") -> tuple[str, tuple]:
    """(name, dims) of the single image input (N, C, H, W); anything else is a BadInput."""
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise BadInput(f"{path}: expected one image input (N,C,H,W), found {len(inputs)} inputs "
                       f"({', '.join(i.name for i in inputs)})")
    value = inputs[0]
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        raise BadInput(f"{path}: input {value.name!r} is not a tensor of known rank, not an image (N,C,H,W)")
    dims = dims_of(value)
    if len(dims) != 4:
        raise BadInput(f"{path}: input {value.name!r} has shape {_fmt(dims)}: not an image tensor (N,C,H,W)")
    if not isinstance(dims[1], int) or dims[1] <= 0:
        raise BadInput(f"{path}: input {value.name!r} has shape {_fmt(dims)}: the channel dim must be fixed")
    if any(isinstance(d, int) and d <= 0 for d in dims):
        raise BadInput(f"{path}: input {value.name!r} has shape {_fmt(dims)}: a dimension of 0 or less holds no "
                       "image")
    import onnx

    elem = value.type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
        raise BadInput(f"{path}: input {value.name!r} is {onnx.TensorProto.DataType.Name(elem)}, "
                       "not a floating-point image tensor")
    return value.name, dims


def _fmt(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def metadata_props(model) -> tuple[dict, dict]:
    """(raw, parsed): every metadata_props entry as text, and scaleprof's own entries decoded from JSON
    (a malformed one is a BadInput naming its key)."""
    raw = {p.key: p.value for p in model.metadata_props}
    parsed = {}
    for key in (META_SPEC, META_COUNTS, META_EXPORT):
        if key in raw:
            try:
                parsed[key] = json.loads(raw[key])
            except json.JSONDecodeError:
                raise BadInput(f"metadata {key!r} is not valid JSON") from None
    return raw, parsed


def quantized_precision(model) -> str | None:
    """'int8' or 'fp8' when the model is a QDQ file (its DequantizeLinear nodes read tensors of that
    type: an initializer or a QuantizeLinear's zero point), None for a float model. The type is read
    from the graph alone, so a QDQ file from any tool is recognised; uint8 activations are int8."""
    found = quantized_types(model)
    if not found:
        return None
    return "fp8" if "fp8" in found else "int8"


def quantized_types(model) -> set[str]:
    """The quantized element types a QDQ file holds: 'int8', 'uint8' (asymmetric activations),
    'fp8'; empty for a float model."""
    inits = {i.name: i.data_type for i in model.graph.initializer}
    found = set()
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            names = [node.input[0]] + list(node.input[2:3])
        elif node.op_type == "QuantizeLinear":
            names = list(node.input[2:3])
        else:
            continue
        found.update(_QUANTIZED_TYPES[inits[n]] for n in names if inits.get(n) in _QUANTIZED_TYPES)
    return found
