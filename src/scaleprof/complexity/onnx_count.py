"""Counting flops, params and activations from an ONNX graph (pycls conventions, SCALING.md §2).

Works for any ONNX file with one image input (N, C, H, W): symbolic dims are made concrete with the
batch and resolution asked for, shapes come from ONNX shape inference (with data propagation, so
shape arithmetic such as TResNet's SpaceToDepth reshape resolves), and each node is counted from
its shapes alone:

- Conv: k_h*k_w*(C_in/groups)*C_out*H_out*W_out, + C_out*H_out*W_out with a bias input;
  ConvTranspose: k_h*k_w*C_in*(C_out/groups)*H_in*W_in (+ bias). acts = output elements.
- Gemm / MatMul: C_in*C_out per output row (+ C_out with a bias; a MatMul followed by an Add of a
  constant is a linear layer with a bias). acts = output elements.
- MaxPool / GlobalMaxPool: acts = output elements, no flops.
- params: elements of the constant weight inputs of those nodes and of normalisation nodes
  (BatchNormalization scale and bias = 2*C, as in PyTorch), PRelu slopes. ONNX has no notion of
  "learnable", so every constant weight of a counted node is a param (see ``compare_counts``).
- Everything else adds 0. Per image: batch-dependent totals are divided by the batch.
- The layer count (``Counts.layer_kinds``): every node by kind, as scaleprof.core.kernels sorts them.

For scaleprof's own exports (TorchScript exporter) node names carry the module scope
(``/blocks/blocks.0/blocks.0.0/conv_dw/Conv`` -> ``blocks.0.0.conv_dw``), and ``compare_counts``
sets ONNX counts against the PyTorch-side ones, naming what export changed (folded BatchNorm).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scaleprof.core.counts import CONVENTION, Counts, LayerCount
from scaleprof.core.kernels import tally
from scaleprof.errors import BadInput

ONNX_CONVENTION = CONVENTION + " (from the ONNX graph: every constant weight of a counted node is a param)"
_NORM_OPS = {"BatchNormalization": (1, 2), "InstanceNormalization": (1, 2), "LayerNormalization": (1, 2),
             "GroupNormalization": (1, 2), "PRelu": (1,)}
_SHAPED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "GlobalMaxPool"}   # counted from shapes


def count_onnx(model, batch: int = 1, resolution: int | tuple[int, int] | None = None) -> Counts:
    """Per-node Counts of an ONNX model (path or ModelProto) for ``batch`` x C x H x W.

    ``resolution`` is needed when the input's spatial dims are symbolic, unless the file is a
    scaleprof export (its spec's resolution is used then)."""
    from scaleprof.core.onnx_file import META_SPEC, image_input, load_model, metadata_props

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


def _infer_shapes(model, input_name: str, dims: tuple) -> tuple[dict, dict]:
    """name -> concrete shape for every tensor, and name -> shape of every constant (initializers)."""
    import onnx

    from scaleprof.core.text import first_line

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
    import ast

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


# ---------------------------------------------------------------------------------------------
# ONNX counts against PyTorch counts

@dataclass(frozen=True)
class FoldedBias:
    module: str            # the conv/linear that gained a bias in export
    params: int            # C_out
    flops: int             # C_out * H_out * W_out per image


@dataclass(frozen=True)
class CountsComparison:
    """ONNX minus PyTorch, split into what export is known to change and what is left over."""

    torch: dict                         # totals per image
    onnx: dict
    acts_equal: bool
    bn_folded: tuple[str, ...]          # BatchNorm modules absorbed into the preceding conv
    bn_params_removed: int              # their 2*C params each
    bias_added: tuple[FoldedBias, ...]  # biases the fold created
    bias_params_added: int
    bias_flops_added: int
    constant_filter_params: int         # fixed (non-learnable) conv filters, e.g. BlurPool: params in ONNX
    unexplained: dict                   # {"flops", "params", "acts"}: 0 each when the difference is exact
    mismatches: tuple[str, ...] = ()    # modules whose counts differ for an unexplained reason
    unmapped_nodes: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return self.acts_equal and not any(self.unexplained.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["exact"] = self.exact
        return data

    def summary(self) -> str:
        d = {k: self.onnx[k] - self.torch[k] for k in ("flops", "params", "acts")}
        return (f"onnx - torch: flops {d['flops']:+,} (= {self.bias_flops_added:+,} folded-BN conv biases), "
                f"params {d['params']:+,} (= {self.bias_params_added:+,} biases "
                f"- {self.bn_params_removed:,} BN params of {len(self.bn_folded)} folded BatchNorms"
                + (f" + {self.constant_filter_params:,} constant filter weights" if self.constant_filter_params else "")
                + f"), acts {d['acts']:+,}; unexplained {self.unexplained}")


_BN_TYPES = ("BatchNorm", "BatchNormAct", "FrozenBatchNorm")


def _summed(rows) -> dict:
    return {k: sum(getattr(r, k) for r in rows) for k in ("flops", "params", "acts")}


def compare_counts(onnx_counts: Counts, torch_counts: Counts, modules: dict[str, str]) -> CountsComparison:
    """Explain ONNX-side counts from PyTorch-side counts, per module.

    ``modules`` maps ONNX node names to PyTorch module names (``node_modules``). Per module:
    a BatchNorm with params in PyTorch and no counted ONNX node was folded (its 2*C params removed);
    a conv/linear whose ONNX node has C_out more params and C_out*H*W more flops gained a bias from the
    fold; a conv node of a module PyTorch counts no params for is a constant filter (BlurPool).
    Whatever else differs is reported as unexplained, never absorbed."""
    by_module: dict[str, list] = {}
    unmapped = []
    for layer in onnx_counts.layers:
        module = modules.get(layer.name)
        if module is None:
            unmapped.append(layer.name)
            module = layer.name
        by_module.setdefault(module, []).append(layer)
    torch_rows = {r.name: r for r in torch_counts.layers}

    bn_folded, bias_added, mismatches = [], [], []
    bn_removed = filter_params = 0
    un = {"flops": 0, "params": 0, "acts": 0}
    for name, row in torch_rows.items():
        nodes = by_module.get(name, [])
        o, t = _summed(nodes), _summed([row])
        if o == t:
            continue
        if not nodes and row.params and not row.flops and not row.acts and any(b in row.type for b in _BN_TYPES):
            bn_folded.append(name)
            bn_removed += row.params
            continue
        convs = [n for n in nodes if n.type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
        if len(convs) == 1 and o["acts"] == t["acts"]:
            c_out = convs[0].output_shape[1] if len(convs[0].output_shape) > 1 else 0
            positions = convs[0].acts // c_out if c_out else 0
            if o["params"] - t["params"] == c_out and o["flops"] - t["flops"] == c_out * positions:
                bias_added.append(FoldedBias(name, c_out, c_out * positions))
                continue
            if t["params"] == 0 and o["flops"] == t["flops"]:
                filter_params += o["params"]
                continue
        mismatches.append(f"{name} ({row.type}): torch {t} onnx {o}")
        for k in un:
            un[k] += o[k] - t[k]
    for module, nodes in by_module.items():   # ONNX nodes of modules PyTorch has no row for
        if module not in torch_rows:
            o = _summed(nodes)
            if any(o.values()):
                mismatches.append(f"{module} ({', '.join(n.type for n in nodes)}): not counted in torch, onnx {o}")
                for k in un:
                    un[k] += o[k]
    return CountsComparison(
        torch=torch_counts.totals(), onnx=onnx_counts.totals(), acts_equal=onnx_counts.acts == torch_counts.acts,
        bn_folded=tuple(bn_folded), bn_params_removed=bn_removed, bias_added=tuple(bias_added),
        bias_params_added=sum(b.params for b in bias_added), bias_flops_added=sum(b.flops for b in bias_added),
        constant_filter_params=filter_params, unexplained=un, mismatches=tuple(mismatches),
        unmapped_nodes=tuple(unmapped))
