"""`scaleprof inspect FILE.onnx|ENGINE_DIR`: what a file holds, read from the file alone.

ONNX: spec, predicted counts (and counts from the graph itself), inputs and outputs, opset, export
record (precision, dynamic axes, parity, versions). Engine directory: its manifest.json (backend,
version, device, precision, shape set) and the ONNX file it was built from, when still there."""

from __future__ import annotations

import json
from pathlib import Path

from scaleprof.tools.args import add_output_arguments, add_shape_arguments, check_shape_arguments

NAME = "inspect"
HELP = "show the spec, counts, inputs, shape set, backend and versions of an ONNX file or engine directory"


def add_arguments(parser) -> None:
    parser.add_argument("target", metavar="FILE.onnx|ENGINE_DIR", help="an ONNX file or an engine directory")
    add_shape_arguments(parser, resolution="count the graph at this resolution (foreign ONNX files with symbolic "
                                           "spatial dims need it for counts)")
    add_output_arguments(parser)


def describe_onnx(path, resolution: int | None = None) -> dict:
    from scaleprof.complexity.onnx_count import count_onnx
    from scaleprof.errors import BadInput
    from scaleprof.core.onnx_file import dims_of, image_input, load_model
    from scaleprof.export.onnx_io import metadata_from_model

    model = load_model(path, load_weights=False)      # the graph and metadata: no tensor is read
    name, dims = image_input(model, path)
    meta = metadata_from_model(model)
    info = {
        "kind": "onnx", "path": str(path), "size_bytes": Path(path).stat().st_size,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        "input": {"name": name, "shape": list(dims)},
        "outputs": [{"name": o.name, "shape": list(dims_of(o))} for o in model.graph.output],
        "nodes": len(model.graph.node),
        "spec": meta.spec.to_dict() if meta.spec else None,
        "label": meta.spec.label if meta.spec else None,
        "predicted_counts": meta.counts, "export": meta.export,
    }
    try:
        counts = count_onnx(model, dims[0] if isinstance(dims[0], int) else 1, resolution)
        info["onnx_counts"] = {**counts.to_dict(per_layer=False), "layers": len(counts.layers)}
    except BadInput as err:
        info["onnx_counts"] = {"unavailable": str(err)}
    return info


def describe_engine(directory: Path) -> dict:
    from scaleprof.engines.base import EngineManifest
    from scaleprof.errors import BadInput

    from scaleprof.core.files import read_limited
    from scaleprof.engines.cache import MAX_MANIFEST_BYTES

    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise BadInput(f"{directory}: not an engine directory (no manifest.json)")
    try:
        manifest = EngineManifest.from_json(read_limited(manifest_path, MAX_MANIFEST_BYTES, "engine manifest")
                                            .decode(errors="replace"))
    except (ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{manifest_path}: unreadable engine manifest ({err})")
    info = {"kind": "engine", "path": str(directory), "manifest": json.loads(manifest.to_json()),
            "shapes": [str(s) for s in manifest.shapes],
            "ranges": [f"{r.min}..{r.opt}..{r.max}" for r in manifest.ranges],
            "artifact_present": (directory / manifest.artifact).is_file()}
    onnx_path = Path(manifest.onnx_path)
    if onnx_path.is_file():
        try:
            info["onnx"] = describe_onnx(onnx_path)
        except BadInput as err:
            info["onnx"] = {"unavailable": str(err)}
    if manifest.extras.get("layers_json"):          # TensorRT-family: layers before fusion, builder memory
        from scaleprof.engines.tensorrt.network import describe_engine_layers

        info["network_layers"] = describe_engine_layers(directory, manifest)
    return info


def run(args) -> int:
    from scaleprof.errors import BadInput

    target = Path(args.target)
    if target.is_dir():
        if args.resolution is not None:
            raise BadInput(f"--resolution counts an ONNX file's graph; {target} is an engine directory "
                           "(give its ONNX file to count that at another resolution)")
        info = describe_engine(target)
    elif target.exists():
        check_shape_arguments(args)
        info = describe_onnx(target, args.resolution)
    else:
        raise BadInput(f"{target}: no such ONNX file or engine directory")
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(_text(info))
    return 0


def _text(info: dict) -> str:
    return "\n".join(_engine_text(info) if info["kind"] == "engine" else _onnx_text(info))


def _engine_text(info: dict) -> list[str]:
    m = info["manifest"]
    lines = [f"engine     {info['path']}",
             f"backend    {m['backend']} {m['backend_version']} on {m['device']} ({m['device_name']})",
             f"precision  {m['precision']}{_activations(m['extras'])}   threads {m['threads']}",
             f"shapes     {', '.join(info['shapes']) or '-'}" + (f"   ranges {', '.join(info['ranges'])}"
                                                                 if info["ranges"] else ""),
             f"artifact   {m['artifact']} ({'present' if info['artifact_present'] else 'MISSING'}), "
             f"built in {m['build_seconds']:.2f} s, key {m['key']}",
             f"from       {m['onnx_path']}"]
    ran, convs = m["extras"].get("layer_precisions"), m["extras"].get("conv_precisions")
    if ran:
        graph = "network layers before fusion" if m["extras"].get("layers_json") else "nodes of the optimised graph"
        lines.append(f"runs in    {_tally(ran)} ({graph}; qdq: a Quantize/DequantizeLinear pair's half)")
    if convs:
        lines.append(f"           convolutions: {_tally(convs)}")
    lines += _engine_lines(m["extras"])
    if "network_layers" in info:
        lines += _layer_lines(info["network_layers"])
    if "onnx" in info and "kind" in info["onnx"]:
        lines += ["", _text(info["onnx"])]
    return lines


def _onnx_text(info: dict) -> list[str]:
    lines = [f"onnx       {info['path']} ({info['size_bytes'] / 1e6:.1f} MB, {info['nodes']} nodes, "
             f"opset {info['opset']}, producer {info['producer'] or '?'})",
             f"input      {info['input']['name']} {'x'.join(map(str, info['input']['shape']))}"]
    for out in info["outputs"]:
        lines.append(f"output     {out['name']} {'x'.join(map(str, out['shape']))}")
    spec = info["spec"]
    if spec:
        lines.append(f"model      {info['label']} (family {spec['family']}, resolution {spec['resolution']}, "
                     f"d x{spec['depth_multiplier']:.3g} w x{spec['width_multiplier']:.3g})")
    else:
        lines.append("model      not exported by scaleprof (no spec in the metadata)")
    if info["export"]:
        lines += _export_lines(info["export"])
    pc, oc = info["predicted_counts"], info["onnx_counts"]
    if pc:
        lines.append(f"predicted  flops {pc['flops']:,}  params {pc['params']:,}  acts {pc['acts']:,}  "
                     f"(PyTorch, per image at {pc['resolution']})")
    if "flops" in oc:
        lines.append(f"graph      flops {oc['flops']:,}  params {oc['params']:,}  acts {oc['acts']:,}  "
                     f"(ONNX graph, per image at {oc['resolution']})")
    else:
        lines.append(f"graph      counts unavailable: {oc['unavailable']}")
    return lines


def _export_lines(exp: dict) -> list[str]:
    """The export record of a scaleprof ONNX file: how it was exported, quantized and checked."""
    versions = exp.get("versions") or {}   # files from elsewhere may carry a partial record
    lines = [f"export     {exp.get('precision', '?')}, {'dynamic' if exp.get('dynamic') else 'static'} shapes, "
             f"{exp.get('exporter', '?')} exporter, torch {versions.get('torch', '?')}, "
             f"onnx {versions.get('onnx', '?')}"]
    if exp.get("spatial_multiple", 1) > 1:
        lines.append(f"           resolutions must be {exp.get('resolution', '?')} + k*{exp['spatial_multiple']} "
                     "(same-padding fixed at export)")
    quantization = exp.get("quantization")
    if isinstance(quantization, dict):
        calibration = quantization.get("calibration") or {}
        lines.append(f"quantized  {quantization.get('format', '?')} {quantization.get('type', '?')} by "
                     f"{quantization.get('tool', '?')}, per-channel {quantization.get('per_channel')}, "
                     f"{quantization.get('weights', '?')} weights, bias quantized "
                     f"{quantization.get('quantize_bias')}, calibrated on {calibration.get('images', '?')} "
                     f"{calibration.get('source', '?')} images ({quantization.get('calibration_method', '?')})")
    for p in exp.get("parity") or []:
        if not {"batch", "resolution", "max_abs", "max_rel"} <= set(p):
            continue
        top1 = f", top-1 agreement {p['top1']:.0%}" if p.get("top1") is not None else ""
        lines.append(f"parity     {p['batch']}x3x{p['resolution']}x{p['resolution']}: max abs {p['max_abs']:.3g}, "
                     f"relative {p['max_rel']:.3g}{top1}" + (" (against fp32)" if quantization else ""))
    return lines


def _tally(counts: dict) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def _activations(extras: dict) -> str:
    """ " (uint8 activations)" for an int8 engine whose manifest records its file's activation type."""
    kind = extras.get("int8_activations")
    return f" ({kind} activations)" if kind else ""


def _engine_lines(extras: dict, top: int = 12) -> list[str]:
    """A TensorRT-family engine's layers after fusion (the first ``top`` of profile 0, with their
    tactics, data types and ONNX origins), weights, GPU targets and determinism."""
    lines = []
    rows = [r for r in extras.get("fused_layers") or () if r["profile"] == 0]
    if rows:
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r["type"]] = kinds.get(r["type"], 0) + 1
        nodes = {n for r in rows for n in r["onnx_nodes"]}
        weights = f"; weights {extras['weights_bytes'] / 2**20:.1f} MiB" if extras.get("weights_bytes") else ""
        lines.append(f"fused      {len(rows)} layers after fusion "
                     f"({', '.join(f'{n} {t}' for t, n in sorted(kinds.items(), key=lambda kv: -kv[1]))}), "
                     f"running {len(nodes)} ONNX nodes{weights}")
        for r in rows[:top]:
            origin = ", ".join(r["onnx_nodes"][:2]) + (f" +{len(r['onnx_nodes']) - 2}" if len(r["onnx_nodes"]) > 2 else "")
            lines.append(f"           {r['name'][:44]:44} {r['type'][:14]:14} {'/'.join(r['outputs']) or '-':5} "
                         f"{r['tactic'][:24] or '-':24} <- {origin or '-'}")
        if len(rows) > top:
            lines.append(f"           ... {len(rows) - top} more (--json lists them all, the graph JSON has their tensors)")
    elif extras.get("weights_bytes"):
        lines.append(f"fused      weights {extras['weights_bytes'] / 2**20:.1f} MiB")
    if extras.get("built_targets") is not None:
        dropped = ", ".join(extras.get("dropped_targets") or ()) or "none"
        lines.append(f"targets    asked {', '.join(extras['compute_capabilities'])}; "
                     f"built {', '.join(extras['built_targets'])}; dropped {dropped}")
    if extras.get("determinism"):
        lines.append(f"determinism {extras['determinism']}")
    return lines


def _layer_lines(net: dict, top: int = 10) -> list[str]:
    """A TensorRT-family engine's layers (the most activations first) and memory per profile."""
    s = net["summary"]
    kinds = ", ".join(f"{n} {t}" for t, n in list(s["by_type"].items())[:4])
    lines = [f"layers     {s['layers']} network layers before fusion ({kinds}, ...), {s['onnx_nodes']} ONNX nodes, "
             f"precision {', '.join(s['precisions'])}"]
    if s.get("runs_in") and set(s["runs_in"]) - set(s["precisions"]):
        lines.append(f"           runs in {_tally(s['runs_in'])} (a layer reading a dequantized tensor runs in its "
                     "quantized type: TensorRT fuses the Q/DQ pair into it)")
    if net["counts_resolution"]:
        lines.append(f"           most activations, predicted per image at {net['counts_resolution']}:")
        for layer in sorted(net["layers"], key=lambda row: -row["acts"])[:top]:
            lines.append(f"           {layer['name'][:48]:48} {layer['type'][:13]:13} "
                         f"{layer['flops'] / 1e6:9.1f} MMACs {layer['acts'] / 1e3:9.1f} K acts")
    for row in net["memory"]:
        got = f"{row['activation_bytes'] / 2**20:.1f} MiB" if row["activation_bytes"] else "not reported"
        want = f"{row['predicted_bytes'] / 2**20:.1f} MiB" if row["predicted_bytes"] else "unknown"
        ratio = f", ratio {row['ratio']:.2f}" if row["ratio"] else ""
        lines.append(f"memory     profile {row['profile']} ({row['batch']}x3x{row['resolution']}x{row['resolution']}): "
                     f"activations {got} ({net['memory_source'] or '?'}), predicted acts x batch x element {want}{ratio}")
    return lines
