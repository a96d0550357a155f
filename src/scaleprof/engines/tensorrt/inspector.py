"""TensorRT's layer information (the engine inspector's JSON), read without TensorRT.

Formats (TensorRT docs; trtexec's sampleReporting; NVIDIA's trt-engine-explorer):

- Inspector / ``trtexec --exportLayerInfo`` JSON (``IEngineInspector.get_engine_information(
  LayerInformationFormat.JSON)``) of an engine built with ``ProfilingVerbosity.DETAILED``:
  ``{"Layers": [{"Name", "LayerType", "Inputs": [...], "Outputs": [...], "TacticName",
  "Metadata", ...}], "Bindings": [names]}`` in TensorRT 10; TensorRT 11 replaces ``Bindings`` by
  ``"I/O Tensors"`` (objects with ``Name``, ``IOMode``, ...) and splits each tensor's
  ``Format/Datatype`` into ``Format`` and ``DataType``. Without DETAILED, ``Layers`` is a list of
  names only. Layers of optimisation profile k > 0 carry a `` [profile k]`` name suffix.
- ``Metadata`` lists the ONNX nodes a layer implements as ``[ONNX Layer: NAME]`` entries
  separated by the control characters 0x1F or 0x1E.
- Fused layer names join the ONNX layer names with ``" + "``; pointwise fusions read
  ``PWN(a, PWN(b, c))``; Myelin (the graph compiler) regions read
  ``{ForeignNode[FIRST...LAST]}``, naming only the first and last ONNX node they swallow.
  TensorRT-RTX lists the layers inside such a region: ``NODE_myl0_5`` (one ONNX node's kernel,
  ``NODE [profile k]_mylk_5`` in profile k) or ``__myl_CorrSilu_myl0_6`` (a generated fusion
  whose nodes only its Metadata names); scaleprof.engines.tensorrt.engine_layers reads them.

Which ONNX nodes each layer executes: scaleprof.engines.tensorrt.origins; per-layer times:
scaleprof.engines.tensorrt.profiler.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from scaleprof.errors import BadInput

_PROFILE_SUFFIX = re.compile(r"\s*\[profile\s+(\d+)\]\s*$")
# TensorRT-RTX names the layers of its graph compiler's region k 'NODE_mylK_N' ('NODE [profile 1]_myl1_N')
_MYELIN_SUFFIX = re.compile(r"_myl\d+_\d+$")
# an entry ends at the ']' followed by a separator, the next entry or the end ('[' may occur in names)
_META_ENTRY = re.compile(r"\[ONNX Layer:\s*(.*?)\](?=\s*(?:[\x1e\x1f]|\[ONNX Layer:|$))", re.S)


def decode_json(data, what: str):
    """``data`` decoded when it is JSON text (str or bytes; raw control characters allowed, as
    trtexec writes them), else as given. Text that is not JSON is a BadInput naming ``what``."""
    if not isinstance(data, (str, bytes)):
        return data
    try:
        return json.loads(data, strict=False)
    except json.JSONDecodeError as err:
        raise BadInput(f"{what} is not JSON: {err}") from None
    except RecursionError:
        raise BadInput(f"{what}: JSON nested too deeply") from None


def as_number(value, what: str, kind=float, minimum: float | None = None):
    """``kind(value)`` of a JSON number; anything else (true, "1", NaN, infinity), or a number below
    ``minimum`` or, for such a bounded value, above MAX_MEASURED, is a BadInput naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{what} is not a number: {value!r:.60}")
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise BadInput(f"{what} is not a number: {value!r:.60}") from None
    if not math.isfinite(number):
        raise BadInput(f"{what} is not a finite number: {value!r:.60}")
    if minimum is not None and number < minimum:
        raise BadInput(f"{what} is {number:g}, below {minimum:g}: not a time a profiler measures")
    if minimum is not None and number > MAX_MEASURED:
        raise BadInput(f"{what} is {number:.3g}, above {MAX_MEASURED:g}: not a time or count a profiler measures")
    return number


MAX_MEASURED = 1e9      # ms (eleven days) or iterations: larger is a damaged or forged export


@dataclass(frozen=True)
class InspectorLayer:
    name: str
    layer_type: str                    # "CaskConvolution", "Myelin", "Reformat", ...
    parameter_type: str = ""           # "Convolution", "Pooling", ... (DETAILED only)
    metadata_nodes: tuple[str, ...] = ()
    tactic: str = ""
    inputs: tuple[dict, ...] = ()
    outputs: tuple[dict, ...] = ()
    profile: int = 0                   # optimisation profile index (from the name suffix)
    raw: Mapping = field(default_factory=dict, compare=False, repr=False)

    @property
    def base_name(self) -> str:
        return strip_profile(self.name)[0]


@dataclass(frozen=True)
class InspectorGraph:
    layers: tuple[InspectorLayer, ...]
    io_tensors: tuple[str, ...]
    detailed: bool                     # False when built without ProfilingVerbosity.DETAILED
    schema: str                        # "trt10" (Bindings) or "trt11" (I/O Tensors)

    def profile_layers(self, profile: int = 0) -> tuple[InspectorLayer, ...]:
        return tuple(layer for layer in self.layers if layer.profile == profile)

    def by_name(self) -> dict[str, InspectorLayer]:
        return {layer.name: layer for layer in self.layers}


def strip_profile(name: str) -> tuple[str, int]:
    """'conv1 + relu1 [profile 2]' -> ('conv1 + relu1', 2); no suffix is profile 0. A TensorRT-RTX
    graph-compiler layer 'conv1 [profile 2]_myl2_7' is ('conv1', 2) too."""
    name = _MYELIN_SUFFIX.sub("", name)
    m = _PROFILE_SUFFIX.search(name)
    return (name[:m.start()], int(m.group(1))) if m else (name, 0)


def metadata_nodes(metadata) -> tuple[str, ...]:
    """ONNX node names from a layer's ``Metadata`` ('[ONNX Layer: a]\\x1f[ONNX Layer: b]')."""
    if not metadata:
        return ()
    if isinstance(metadata, (list, tuple)):
        return tuple(dict.fromkeys(n for m in metadata for n in metadata_nodes(m)))
    return tuple(dict.fromkeys(m.strip() for m in _META_ENTRY.findall(str(metadata))))


def _tensor_info(t) -> dict:
    if not isinstance(t, Mapping):
        return {"Name": str(t)}
    info = dict(t)
    if "Format/Datatype" in info and "DataType" not in info:     # TensorRT 10 spelling
        info["DataType"] = info["Format/Datatype"]
    return info


def parse_inspector(data) -> InspectorGraph:
    """An InspectorGraph from the inspector's JSON (a str, bytes or the decoded object)."""
    data = decode_json(data, "TensorRT layer information")
    if not isinstance(data, Mapping) or not isinstance(data.get("Layers"), list):
        raise BadInput("TensorRT layer information has no 'Layers' list "
                       "(expected IEngineInspector / trtexec --exportLayerInfo JSON)")
    layers = []
    detailed = True
    for raw in data["Layers"]:
        if isinstance(raw, str):                 # LAYER_NAMES_ONLY verbosity
            detailed = False
            raw = {"Name": raw, "LayerType": ""}
        if not isinstance(raw, Mapping) or "Name" not in raw:
            raise BadInput("TensorRT layer information has a layer without a 'Name'")
        name = str(raw["Name"])
        layers.append(InspectorLayer(
            name=name,
            layer_type=str(raw.get("LayerType", "")),
            parameter_type=str(raw.get("ParameterType", "")),
            metadata_nodes=metadata_nodes(raw.get("Metadata")),
            tactic=str(raw.get("TacticName", "")),
            inputs=tuple(_tensor_info(t) for t in raw.get("Inputs", ()) or ()),
            outputs=tuple(_tensor_info(t) for t in raw.get("Outputs", ()) or ()),
            profile=int(raw["Profile"]) if isinstance(raw.get("Profile"), int) else strip_profile(name)[1],
            raw=raw,
        ))
    if "I/O Tensors" in data:
        io = tuple(str(t.get("Name", "")) if isinstance(t, Mapping) else str(t) for t in data["I/O Tensors"])
        schema = "trt11"
    else:
        io = tuple(str(b) for b in data.get("Bindings", ()) or ())
        schema = "trt10"
    return InspectorGraph(tuple(layers), io, detailed, schema)


def read_inspector(path: str | Path) -> InspectorGraph:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BadInput(f"no such layer information file: {path}") from None
    return parse_inspector(text)


def unsupported_nodes(nodes: Iterable[tuple[str, str]], supports) -> list[tuple[str, str]]:
    """(name, op_type) of the ONNX nodes whose operator ``supports(op_type)`` rejects
    (OnnxParser.supports_operator), in graph order."""
    seen: dict[str, bool] = {}
    out = []
    for name, op in nodes:
        if op not in seen:
            seen[op] = bool(supports(op))
        if not seen[op]:
            out.append((name, op))
    return out
