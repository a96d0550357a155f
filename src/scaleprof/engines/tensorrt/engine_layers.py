"""The engine's own layers, after fusion, as the builder logs them (no TensorRT import).

With ``ProfilingVerbosity.DETAILED``, TensorRT-RTX's builder ends a build with one VERBOSE message
``Layers:\\n`` followed by one line per engine layer of every optimisation profile::

    Name: N, LayerType: T, Inputs: [ { Name: ..., Dimensions: [..], ..., Datatype: Float,
    Format: ... }], Constants: [...], Outputs: [...], TacticName: X, StreamId: 0, Metadata: M

then ``I/O Tensors:`` lines. ``M`` lists the layer's ONNX nodes as ``[ONNX Layer: NAME]`` entries
(the inspector's Metadata). Layers of profile k > 0 carry `` [profile k]`` inside their names or
their tensors' names; each profile's layers come as one block, in profile order.

``parse_layer_report`` turns that text into the engine inspector's JSON (TensorRT 11 schema, with
TensorRT 10's ``Format/Datatype`` (the data type, as the engine explorer (TREx) reads graph-compiler
tensors) and ``Bindings`` added; TREx's own profile filter knows only names with ``[profile k]``,
so it reads one-profile engines as they are),
written beside the plan as ``engine.plan.graph.json``: what ``IEngineInspector`` would answer,
where the plan cannot be loaded (no GPU, or built for other GPUs; Polygraphy's ``inspect model
--show layers`` asks the inspector of a loaded plan, so it cannot stand in). ``layer_rows`` is the
compact form the manifest keeps.
"""

from __future__ import annotations

import json
import re
from typing import Mapping

from scaleprof.engines.tensorrt.inspector import InspectorGraph

_LAYER = re.compile(r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]*), Inputs: \[(?P<inputs>.*?)\], "
                    r"(?:Constants: \[(?P<constants>.*?)\], )?Outputs: \[(?P<outputs>.*?)\], "
                    r"TacticName: (?P<tactic>[^,]*), StreamId: (?P<stream>\d+), Metadata: ?(?P<meta>.*)$", re.S)
_TENSOR = re.compile(r"\{ Name: (?P<name>.*?), Dimensions: \[(?P<dims>[-\d,]*)\],.*?"
                     r"Datatype: (?P<dtype>\w+), Format: (?P<format>.*?) \}")
_IO = re.compile(r"^\s*Name: (?P<name>.*?), IOMode: (?P<mode>\w+), DataType: (?P<dtype>\w+), "
                 r"Dimensions: \[(?P<dims>[-\d,]*)\]")
_PROFILE = re.compile(r"\[profile (\d+)\]")
DTYPES = {"Float": "fp32", "Half": "fp16", "BFloat16": "bf16", "Int8": "int8", "FP8": "fp8", "Int32": "int32",
          "Int64": "int64", "Bool": "bool", "UInt8": "uint8", "Int4": "int4", "FP4": "fp4", "E8M0": "e8m0"}


def is_layer_report(text: str) -> bool:
    return text.startswith("Layers:\n")


def _tensors(text: str | None) -> list[dict]:
    rows = []
    for m in _TENSOR.finditer(text or ""):
        rows.append({"Name": m["name"], "Dimensions": [int(d) for d in m["dims"].split(",") if d],
                     "DataType": m["dtype"], "Format": m["format"],
                     "Format/Datatype": m["dtype"]})      # as the engine explorer reads graph-compiler tensors
    return rows


def _profile_marker(name: str, tensors: list[dict]) -> int | None:
    found = [int(k) for text in [name, *(t["Name"] for t in tensors)] for k in _PROFILE.findall(text)]
    return max(found) if found else None


def parse_layer_report(text: str) -> dict:
    """The builder's ``Layers:`` message as inspector JSON: {"Layers": [...], "I/O Tensors": [...],
    "Bindings": [...]}; each layer also carries "Profile" (its optimisation profile)."""
    layers, io = [], []
    profile = 0
    for line in text.splitlines()[1:]:
        if m := _LAYER.match(line):
            inputs, outputs = _tensors(m["inputs"]), _tensors(m["outputs"])
            marker = _profile_marker(m["name"], inputs + outputs)
            profile = marker if marker is not None else profile
            layers.append({"Name": m["name"], "LayerType": m["type"], "Inputs": inputs, "Outputs": outputs,
                           "Constants": _tensors(m["constants"]), "TacticName": m["tactic"],
                           "StreamId": int(m["stream"]), "Metadata": m["meta"], "Profile": profile})
        elif m := _IO.match(line):
            io.append({"Name": m["name"], "IOMode": m["mode"], "DataType": m["dtype"],
                       "Dimensions": [int(d) for d in m["dims"].split(",") if d]})
    return {"Layers": layers, "I/O Tensors": io, "Bindings": [t["Name"] for t in io]}


def graph_document(report: Mapping) -> str:
    return json.dumps(report, indent=1) + "\n"


def layer_rows(graph: InspectorGraph) -> list[dict]:
    """Per engine layer: name, type, tactic, profile, the data types of its inputs and outputs, and
    the ONNX nodes it runs (its Metadata): what the manifest keeps."""
    def types(tensors) -> list[str]:
        names = (str(t.get("DataType", "")).split()[-1] for t in tensors if t.get("DataType"))
        return sorted({DTYPES.get(n, n.lower()) for n in names})

    return [{"name": layer.name, "type": layer.layer_type, "tactic": layer.tactic, "profile": layer.profile,
             "inputs": types(layer.inputs), "outputs": types(layer.outputs), "onnx_nodes": list(layer.metadata_nodes)}
            for layer in graph.layers]


def layers_per_profile(rows) -> list[int]:
    counts: dict[int, int] = {}
    for row in rows:
        counts[row["profile"]] = counts.get(row["profile"], 0) + 1
    return [counts[k] for k in sorted(counts)]
