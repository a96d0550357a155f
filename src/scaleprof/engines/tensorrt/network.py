"""The network's layers before fusion, as the ONNX parser made them, and the memory the builder
planned: saved beside the plan and set against the predicted counts, so a TensorRT-family engine's
layers and memory can be shown against flops/acts where it cannot run.

The parser names each layer after its ONNX node (helpers it adds are ``ONNXTRT_*`` or a weight's
name; a node it splits, such as Gemm into a matrix multiply and a bias add, gives a second layer
``NODE_k``) and sets ``layer.metadata`` to ``[ONNX Layer: NODE]``. A layer's precision here is its
first output's type: in a strongly typed network (TensorRT 11, TensorRT-RTX) that is the type it
computes in; a weakly typed TensorRT 10 network chooses kernel precisions later, in the build.

The layer file ``<plan>.layers.json``: {"format", "stage", "library", "version", "layers": [{"name",
"type", "onnx_nodes", "precision", "runs_in"}]}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from scaleprof.complexity import count_onnx
from scaleprof.core.onnx_file import ELEMENT_BYTES
from scaleprof.engines.tensorrt.inspector import metadata_nodes
from scaleprof.errors import BadInput

FORMAT = "scaleprof.tensorrt.network-layers/1"
PRECISION_NAMES = {"FLOAT": "fp32", "HALF": "fp16", "BF16": "bf16", "INT8": "int8", "INT32": "int32",
                   "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "fp8", "INT4": "int4", "FP4": "fp4"}


# --- reading the network and the layer file ------------------------------------------------

def network_layers(network) -> list[dict]:
    """name, type, ONNX nodes (from the layer's metadata), precision (its first output's type) and
    ``runs_in`` of every network layer: a layer that reads a DEQUANTIZE layer's output runs in the
    type that layer dequantizes (TensorRT fuses the Q/DQ pair into it: explicit quantization), a
    QUANTIZE or DEQUANTIZE layer is "qdq", any other runs in its own type."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    quantized_from = {}                 # a DEQUANTIZE layer's output -> the type it dequantizes
    for layer in layers:
        if _type_name(layer) == "DEQUANTIZE" and layer.num_outputs:
            quantized_from[layer.get_output(0).name] = _dtype(layer.get_input(0))
    rows = []
    for layer in layers:
        precision = _dtype(layer.get_output(0) if layer.num_outputs else None)
        reads = [quantized_from.get(getattr(layer.get_input(k), "name", None)) for k in range(layer.num_inputs)]
        runs_in = "qdq" if _type_name(layer) in ("QUANTIZE", "DEQUANTIZE") else \
            next((t for t in reads if t in ("int8", "fp8", "int4", "fp4")), precision)
        rows.append({"name": layer.name, "type": _type_name(layer),
                     "onnx_nodes": list(metadata_nodes(getattr(layer, "metadata", ""))),
                     "precision": precision, "runs_in": runs_in})
    return rows


def _type_name(layer) -> str:
    return getattr(layer.type, "name", str(layer.type))


def _dtype(tensor) -> str:
    name = getattr(getattr(tensor, "dtype", None), "name", "")
    return PRECISION_NAMES.get(name, name.lower())


def precision_extras(layers: Sequence[Mapping]) -> dict:
    """For the manifest: the network's layers and its convolutions by the precision they run in."""
    def tally(rows) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in rows:
            key = row.get("runs_in", row["precision"])
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    computing = [r for r in layers if r["type"] != "CONSTANT"]        # weights and scales, not layers that run
    return {"layer_precisions": tally(computing),
            "conv_precisions": tally(r for r in computing if r["type"] == "CONVOLUTION")}


def layers_document(layers: Sequence[dict], library: str, version: str) -> str:
    return json.dumps({"format": FORMAT, "stage": "network before fusion (OnnxParser)", "library": library,
                       "version": version, "layers": list(layers)}, indent=1) + "\n"


def read_layers(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"no layer file at {path}") from None
    except (OSError, ValueError) as err:
        raise BadInput(f"{path} is not a layer file ({type(err).__name__})") from None
    if not isinstance(data, Mapping) or data.get("format") != FORMAT or not isinstance(data.get("layers"), list):
        raise BadInput(f"{path} is not a scaleprof network-layer file ({FORMAT})")
    return data["layers"]


# --- against the predicted counts ----------------------------------------------------------

def layer_counts(layers: Iterable[Mapping], node_counts: Mapping[str, tuple[int, int, int]]) -> list[dict]:
    """Each layer with the predicted (flops, params, acts) of its ONNX nodes. A node's counts go to
    one layer: the one named after it, else the first whose metadata lists it."""
    rows = [dict(layer, flops=0, params=0, acts=0) for layer in layers]
    owner = {row["name"]: i for i, row in enumerate(rows) if row["name"] in node_counts}
    for i, row in enumerate(rows):
        for node in row.get("onnx_nodes", ()):
            owner.setdefault(node, i)
    for node, i in owner.items():
        if node in node_counts:
            flops, params, acts = node_counts[node]
            rows[i]["flops"] += flops
            rows[i]["params"] += params
            rows[i]["acts"] += acts
    return rows


def layer_summary(layers: Sequence[Mapping]) -> dict:
    """For a summary line: how many layers, by type and precision, and the ONNX nodes they cover."""
    def tally(key: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in layers:
            counts[layer[key]] = counts.get(layer[key], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    nodes = {node for layer in layers for node in layer.get("onnx_nodes", ())}
    return {"layers": len(layers), "by_type": tally("type"), "precisions": tally("precision"),
            "runs_in": tally("runs_in") if all("runs_in" in layer for layer in layers) else None,
            "onnx_nodes": len(nodes)}


def predicted_activation_bytes(acts_per_image: int, batch: int, precision: str) -> int:
    """acts x batch x element size: every conv output held at once, none reused."""
    return int(acts_per_image) * int(batch) * ELEMENT_BYTES.get(precision, 4)


def engine_profiles_json(manifest) -> list[dict]:
    """The manifest's optimisation profiles; a static engine's one shape as its single profile."""
    profiles = manifest.extras.get("profiles") or []
    if profiles or not manifest.shapes:
        return profiles
    top = max(manifest.shapes)
    point = {"batch": top.batch, "resolution": top.resolution}
    return [{"min": point, "opt": point, "max": point}]


def memory_rows(extras: Mapping, precision: str, acts_at: Callable[[int], int | None],
                profiles: Sequence[Mapping] | None = None) -> list[dict]:
    """Per optimisation profile (``profiles``, default the extras'): its largest shape, the activation
    memory reported for it (manifest extras ``activation_bytes``), and the predicted bytes at that
    shape (``acts_at(resolution)``: predicted acts per image, None when unknown)."""
    reported = list(extras.get("activation_bytes") or ())
    rows = []
    for index, profile in enumerate(extras.get("profiles") or () if profiles is None else profiles):
        top = profile["max"]
        acts = acts_at(top["resolution"])
        predicted = predicted_activation_bytes(acts, top["batch"], precision) if acts else None
        got = reported[index] if index < len(reported) else None
        rows.append({"profile": index, "batch": top["batch"], "resolution": top["resolution"],
                     "activation_bytes": got, "predicted_bytes": predicted,
                     "ratio": round(got / predicted, 3) if got and predicted else None})
    return rows


def describe_engine_layers(directory: Path, manifest) -> dict:
    """An engine's layer file against the ONNX file's predicted counts (per image, at its first
    profile's largest resolution) and its activation memory per profile against acts x batch x
    element size; counts are None when the ONNX file is gone."""
    counted: dict[int, object] = {}
    onnx_path = Path(manifest.onnx_path)
    dims = next(iter((manifest.extras.get("inputs") or {"": [-1]}).values()))
    batch = dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else 1    # a static batch's counts

    def counts_at(resolution: int):
        if resolution not in counted:
            counted[resolution] = count_onnx(onnx_path, batch, resolution) if onnx_path.is_file() else None
        return counted[resolution]

    layers = read_layers(Path(directory) / manifest.extras["layers_json"])
    profiles = engine_profiles_json(manifest)
    resolution = profiles[0]["max"]["resolution"]
    counts = counts_at(resolution)
    per_node = {c.name: (int(c.flops), int(c.params), int(c.acts)) for c in counts.layers} if counts else {}
    memory = memory_rows(manifest.extras, manifest.precision,
                         lambda r: counts_at(r).acts if counts_at(r) is not None else None, profiles)
    return {"summary": layer_summary(layers), "counts_resolution": resolution if counts else None,
            "layers": layer_counts(layers, per_node), "memory": memory,
            "memory_source": manifest.extras.get("activation_source")}


def check_gpu_memory(gib: float | None, activation_bytes: Sequence[int], weights_bytes: int | None,
                     profiles: Sequence[Mapping]) -> dict:
    """Each profile's activations plus the weights against the target GPU's ``gib`` (None: no
    check, {}). A profile that does not fit is a BadInput naming it and what it needs."""
    if gib is None:
        return {}
    budget = int(gib * 2**30)
    weights = int(weights_bytes or 0)
    if not activation_bytes:
        raise BadInput("gpu_memory_gib: the builder reported no activation memory to check")
    for index, activations in enumerate(activation_bytes):
        if activations + weights > budget:
            top = profiles[index]["max"] if index < len(profiles) else None
            shape = f" ({top['batch']}x3x{top['resolution']}x{top['resolution']})" if top else ""
            raise BadInput(f"optimisation profile {index}{shape} needs {activations / 2**30:.2f} GiB of activations "
                           f"+ {weights / 2**30:.2f} GiB of weights, more than the target GPU's {gib:g} GiB "
                           f"(gpu_memory_gib): build smaller batches or resolutions")
    return {"gpu_memory_gib": gib, "fits_gpu_memory": True}
