"""Reading ONNX files defensively, and scaleprof's metadata inside them.

Any later stage (engines, profile, inspect) learns what a file holds from the file alone:
``read_metadata(path)`` gives back the ModelSpec, the predicted counts and how it was exported.
Every problem with the file is a BadInput worded for the user, never a protobuf traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.models.spec import ModelSpec

# metadata_props keys written by export_onnx (all values are JSON text)
META_SPEC = "scaleprof.spec"          # ModelSpec.to_json()
META_COUNTS = "scaleprof.counts"      # predicted (PyTorch-side) totals per image at spec.resolution
META_EXPORT = "scaleprof.export"      # options, versions, parity figures, spatial constraints
META_VERSION = "scaleprof.version"


def load_model(path, load_weights: bool = True):
    """onnx.ModelProto from ``path``; a missing, empty, truncated or non-ONNX file is a BadInput."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such ONNX file")
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=load_weights)
    except OSError as err:
        raise BadInput(f"{path}: cannot read the ONNX file ({err.strerror or err})")
    except Exception as err:  # protobuf's binary, text and JSON parsers each raise their own error types
        raise BadInput(f"{path}: not a readable ONNX model (corrupt or truncated: {_first_line(err)})")
    if not model.graph.node or not model.graph.input:
        raise BadInput(f"{path}: not a readable ONNX model (no graph: corrupt or truncated)")
    # A truncated protobuf often still parses up to the cut; the checker sees dangling references.
    _check_structure(model, path)
    return model


def _first_line(err, limit: int = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's name."""
    text = str(err).strip().splitlines()
    return text[0][:limit] if text else type(err).__name__


def _check_structure(model, path) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as err:
        raise BadInput(f"{path}: invalid ONNX model ({_first_line(err)})")


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
    import onnx

    elem = value.type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
        raise BadInput(f"{path}: input {value.name!r} is {onnx.TensorProto.DataType.Name(elem)}, "
                       "not a floating-point image tensor")
    return value.name, dims


def _fmt(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


@dataclass(frozen=True)
class OnnxMetadata:
    spec: ModelSpec | None          # None for an ONNX file scaleprof did not export
    counts: dict | None             # predicted totals: {"flops", "params", "acts", "resolution", "convention"}
    export: dict | None             # opset, precision, dynamic, exporter, versions, parity, ...
    raw: dict = field(default_factory=dict)   # every metadata_props entry, as text

    @property
    def ours(self) -> bool:
        return self.spec is not None


def metadata_from_model(model) -> OnnxMetadata:
    raw = {p.key: p.value for p in model.metadata_props}

    def parse(key):
        if key not in raw:
            return None
        try:
            return json.loads(raw[key])
        except json.JSONDecodeError:
            raise BadInput(f"metadata {key!r} is not valid JSON")

    spec = parse(META_SPEC)
    return OnnxMetadata(spec=ModelSpec.from_dict(spec) if spec else None, counts=parse(META_COUNTS),
                        export=parse(META_EXPORT), raw=raw)


def read_metadata(path) -> OnnxMetadata:
    """The spec, predicted counts and export record stored in an ONNX file (empty for foreign files)."""
    return metadata_from_model(load_model(path, load_weights=False))


def set_metadata(model, entries: dict) -> None:
    """Write (replace) metadata_props entries; dict/list values are stored as JSON."""
    keep = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def check_writable_target(path) -> Path:
    """Resolve ``path``, create its directory, and prove a file can be written there (before any work)."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise BadInput(f"{path}: is a directory; give the ONNX file name (e.g. {path / 'model.onnx'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise EnvironmentProblem(f"cannot write to {path.parent}: {err.strerror or err}")
    return path


@contextmanager
def atomic_target(path):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, else removed.

    A reader never sees a half-written file where a good one was expected."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
