"""Counting flops, params and activations from an ONNX graph (pycls conventions, docs/conventions.md#counting).

Works for any ONNX file with one image input (N, C, H, W): symbolic dims are made concrete with the
batch and resolution asked for, shapes come from ONNX shape inference (with data propagation, so
shape arithmetic such as TResNet's SpaceToDepth reshape resolves), and each node is counted from
its shapes alone:

- Conv: k_h*k_w*(C_in/groups)*C_out*H_out*W_out, + C_out*H_out*W_out with a bias input;
  ConvTranspose: k_h*k_w*C_in*(C_out/groups)*H_in*W_in (+ bias). acts = output elements.
- Gemm / MatMul: C_in*C_out per output row (+ C_out with a bias; a MatMul followed by an Add of a
  constant is a linear layer with a bias). acts = output elements.
- MaxPool / GlobalMaxPool: acts = output elements, no flops.
- params: elements of the constant weight inputs (in a QDQ file, a weight read through a
  DequantizeLinear of a constant counts as that constant) of those nodes and of normalisation nodes
  (BatchNormalization scale and bias = 2*C, as in PyTorch), PRelu slopes. ONNX has no notion of
  "learnable", so every constant weight of a counted node is a param (see ``compare_counts``).
- Everything else adds 0. Per image: batch-dependent totals are divided by the batch.
- The layer count (``Counts.layer_kinds``): every node by kind, as scaleprof.core.layer_count sorts them.

For scaleprof's own exports (TorchScript exporter) node names carry the module scope
(``/blocks/blocks.0/blocks.0.0/conv_dw/Conv`` -> ``blocks.0.0.conv_dw``), and ``compare_counts``
(scaleprof.complexity.comparison) sets ONNX counts against the PyTorch-side ones, naming what export
changed (folded BatchNorm, constant-folded fusion weights, weights copied per call).
"""

from __future__ import annotations

import ast
import math

from scaleprof.core.counts import CONVENTION, Counts, LayerCount
from scaleprof.core.layer_count import tally
from scaleprof.core.onnx_file import META_COUNTS, META_SPEC, image_input, load_model, metadata_props
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput

ONNX_CONVENTION = CONVENTION + " (from the ONNX graph: every constant weight of a counted node is a param)"
_NORM_OPS = {"BatchNormalization": (1, 2), "InstanceNormalization": (1, 2), "LayerNormalization": (1, 2),
             "GroupNormalization": (1, 2), "PRelu": (1,)}
_SHAPED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "GlobalMaxPool"}   # counted from shapes


def count_onnx(model, batch: int = 1, resolution: int | tuple[int, int] | None = None) -> Counts:
    """Per-node Counts of an ONNX model (path or ModelProto) for ``batch`` x C x H x W.

    ``resolution`` is needed when the input's spatial dims are symbolic, unless the file is a
    scaleprof export (its spec's resolution is used then)."""
    source = model
    if not hasattr(model, "graph"):
        model = load_model(model)
    label = source if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__") else "model"
    name, dims = image_input(model, label)
    if batch < 1:
        raise BadInput(f"batch must be at least 1, got {batch}")
    if resolution is None:
        if isinstance(dims[2], int) and isinstance(dims[3], int):
            resolution = (dims[2], dims[3])
        else:
            spec = metadata_props(model)[1].get(META_SPEC)
            if not spec or "resolution" not in spec:
                raise BadInput(f"{label}: input {name!r} has symbolic spatial dims {dims}: give a resolution")
            resolution = int(spec["resolution"])
    h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    for i, want in ((0, batch), (2, h), (3, w)):
        if isinstance(dims[i], int) and dims[i] != want:
            raise BadInput(f"{label}: input {name!r} is static {dims}; it cannot take {batch}x{dims[1]}x{h}x{w}")
    shapes, consts = _infer_shapes(model, name, (batch, dims[1], h, w))
    layers = []
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        counted = _count_node(node, shapes, consts, producers, batch)
        if counted is None:
            continue
        flops, params, acts = counted
        out = shapes.get(node.output[0], ())
        layers.append(LayerCount(name=node.name or node.output[0], type=node.op_type, output_shape=tuple(out),
                                 flops=int(flops), params=int(params), acts=int(acts)))
    return Counts.from_layers(layers, h, w, batch, convention=ONNX_CONVENTION,
                              layer_kinds=tally(node.op_type for node in model.graph.node))


def check_graph_matches(model, label) -> None:
    """BadInput unless the graph of ``model`` (a ModelProto) is the network its scaleprof metadata names:
    its activations, counted from the graph at the export resolution, equal the PyTorch-side count the
    export stored (they agree exactly for every family; a swapped or forged file does not). A file
    without predicted counts (not scaleprof's) has nothing to check."""
    parsed = metadata_props(model)[1]
    counts, spec = parsed.get(META_COUNTS), parsed.get(META_SPEC)
    if not isinstance(counts, dict) or not all(type(counts.get(k)) is int for k in ("acts", "resolution")):
        return
    acts = count_onnx(model, 1, counts["resolution"]).acts
    if acts != counts["acts"]:
        name = spec.get("model", "the network") if isinstance(spec, dict) else "the network"
        raise BadInput(f"{label}: its graph is not the {name} its metadata names (activations {acts:,} counted "
                       f"from the graph, {counts['acts']:,} in its metadata): a swapped or edited file; export "
                       "it again")


def _infer_shapes(model, input_name: str, dims: tuple) -> tuple[dict, dict]:
    """name -> concrete shape for every tensor, and name -> shape of every constant (initializers)."""
    import onnx


    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        if value.name == input_name:
            for d, size in zip(value.type.tensor_type.shape.dim, dims):
                d.Clear()
                d.dim_value = size
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception as err:  # inconsistent shapes: a malformed file
        raise BadInput(f"ONNX shape inference failed: {first_line(err)}")
    shapes = _concrete_shapes(inferred)
    needed = {o for n in model.graph.node if n.op_type in _SHAPED_OPS for o in n.output}
    if needed - shapes.keys():
        # ONNX's own inference stops at shape arithmetic it cannot evaluate (e.g. TResNet's
        # SpaceToDepth: Shape -> Div -> Concat -> Reshape); ONNX Runtime's symbolic inference does not.
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        try:
            shapes.update(_concrete_shapes(SymbolicShapeInference.infer_shapes(fixed, auto_merge=True)))
        except Exception:  # leave the gap: the node that needs it names it
            pass
    consts = {i.name: tuple(i.dims) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = tuple(node.attribute[0].t.dims)
        elif node.op_type == "DequantizeLinear" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]      # a QDQ file's weight, dequantized
    shapes.update(consts)
    return shapes, consts


def _concrete_shapes(model) -> dict:
    shapes = {}
    for value in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        tt = value.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in tt.shape.dim)
    return shapes


def _count_node(node, shapes, consts, producers, batch):
    """(flops, params, acts) per image for counted ops, None for the rest."""
    op = node.op_type
    ins = list(node.input)

    def shape(name):
        if name not in shapes:
            raise BadInput(f"cannot infer the shape of {name!r} (input of {op} node {node.name!r})")
        return shapes[name]

    def const_numel(i):
        return math.prod(consts[ins[i]]) if len(ins) > i and ins[i] in consts else 0

    if op in ("Conv", "ConvTranspose"):
        weight, out = shape(ins[1]), shape(node.output[0])
        per_image = math.prod(out) // batch
        has_bias = len(ins) > 2 and bool(ins[2])
        if op == "Conv":   # prod(weight) = C_out * C_in/groups * k_h * k_w
            flops = math.prod(weight) * math.prod(out[2:])
        else:              # weight: C_in x C_out/groups x k: every input position scatters a kernel
            flops = math.prod(weight) * math.prod(shape(ins[0])[2:])
        flops += out[1] * math.prod(out[2:]) if has_bias else 0
        return flops, const_numel(1) + const_numel(2), per_image
    if op == "Gemm":
        a, out = shape(ins[0]), shape(node.output[0])
        trans_a = _attr(node, "transA", 0)
        k = a[0] if trans_a else a[1]
        rows, cols = out
        flops = rows * k * cols + (rows * cols if len(ins) > 2 and ins[2] else 0)
        return flops // batch, const_numel(1) + const_numel(2), rows * cols // batch
    if op == "MatMul":
        a, out = shape(ins[0]), shape(node.output[0])
        return math.prod(out) * a[-1] // batch, const_numel(1) + (const_numel(0) if ins[0] in consts else 0), \
            math.prod(out) // batch
    if op == "Add" and _is_linear_bias(node, consts, producers):
        out = shape(node.output[0])
        bias = next(i for i in ins if i in consts)
        return math.prod(out) // batch, math.prod(consts[bias]), 0
    if op in ("MaxPool", "GlobalMaxPool"):
        return 0, 0, math.prod(shape(node.output[0])) // batch
    if op in _NORM_OPS:
        return 0, sum(const_numel(i) for i in _NORM_OPS[op]), 0
    return None


def _is_linear_bias(node, consts, producers) -> bool:
    """Add(MatMul(x, W), b) with W and b constant: the bias of a linear layer."""
    ins = list(node.input)
    if len(ins) != 2 or sum(i in consts for i in ins) != 1:
        return False
    other = ins[0] if ins[1] in consts else ins[1]
    prod = producers.get(other)
    return prod is not None and prod.op_type == "MatMul" and prod.input[1] in consts


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


# ---------------------------------------------------------------------------------------------
# Node -> PyTorch module

def module_of_node_name(name: str) -> str:
    """Qualified PyTorch module name from a TorchScript-exporter node name.

    The exporter writes one scope segment per module; children of containers repeat the parent's
    segment as a prefix (``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``), named children do not
    (``/body/layer2/layer2.0/conv1/aa/Pad``). Returns "" for nodes of the root module."""
    segments = [s for s in name.split("/") if s][:-1] if name.startswith("/") else []
    parts, prev = [], None
    for seg in segments:
        parts.append(seg[len(prev) + 1:] if prev and seg.startswith(prev + ".") else seg)
        prev = seg
    return ".".join(parts)


def node_modules(model) -> dict[str, str]:
    """node name -> qualified PyTorch module name, from the scope in the node name or, for the
    torch.export-based exporter, the ``pkg.torch.onnx.name_scopes`` node metadata."""
    mapping = {}
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        if scopes:
            try:
                names = [s for s in ast.literal_eval(scopes) if s][:-1]   # last entry: the op itself
            except (ValueError, SyntaxError):
                names = []
            mapping[node.name] = names[-1] if names else ""
        else:
            mapping[node.name] = module_of_node_name(node.name)
    return mapping
