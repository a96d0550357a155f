"""scaleprof's metadata inside its ONNX files, as the export stage's types.

``read_metadata(path)`` gives back the ModelSpec, the predicted counts and how it was exported; the
file reading itself (load_model, image_input, the raw metadata) is scaleprof.core.onnx_file's.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scaleprof.core.files import check_replaceable
from scaleprof.core.text import first_line
from scaleprof.core.onnx_file import (META_COUNTS, META_EXPORT, META_SPEC,  # noqa: F401 (re-exported)
                                      image_input, load_model, metadata_props)
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.models.spec import ModelSpec


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
    raw, parsed = metadata_props(model)
    for key in (META_SPEC, META_COUNTS, META_EXPORT):
        if key in parsed and not isinstance(parsed[key], dict):
            raise BadInput(f"metadata {key!r} is {type(parsed[key]).__name__}, not a JSON object: "
                           "not a file scaleprof exported (or one edited by hand)")
    spec = parsed.get(META_SPEC)
    try:
        spec = ModelSpec.from_dict(spec) if spec else None
    except (TypeError, KeyError, ValueError, AttributeError, BadInput) as err:
        raise BadInput(f"metadata {META_SPEC!r} is not a model spec ({type(err).__name__}: "
                       f"{first_line(err, 120)}): not a file scaleprof exported (or one edited by hand)") from None
    return OnnxMetadata(spec=spec, counts=parsed.get(META_COUNTS), export=parsed.get(META_EXPORT), raw=raw)


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
    check_replaceable(path)             # a device, pipe or socket there is not ours to replace
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise EnvironmentProblem(f"cannot write to {path.parent}: {err.strerror or err}")
    return path
