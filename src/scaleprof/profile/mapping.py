"""Map measured engine layers back to the exported ONNX nodes they execute.

Backends rename and fuse nodes. A *resolver* (one per backend, chosen by name) turns one profiled
layer into *anchor* nodes of the exported graph; the graph walk below then gives every remaining
exported node to exactly one layer, so per-layer counts sum to the model's totals:

1. anchors: the layer's own ONNX names (TensorRT metadata), exact node names, names the backend
   derived from a node or tensor name (ONNX Runtime: ``<tensor>_nchwc``, ``<node>/QuickGeluFusion/``,
   TensorRT: ``A + B``), and exported tensors the optimised node still produces;
2. the members of a fused layer that no name points at (the Conv under a ``relu_3_nchwc``, the
   Sigmoid inside a QuickGelu, a residual Add fused into a convolution) join the layer their
   outputs flow into, or failing that the layer that feeds them;
3. nodes that only compute constants (shape arithmetic, weight Identity) are "not executed";
4. layers with no anchor at all are backend helpers (layout reorders, copies): timed and reported,
   attributed to the layer whose data they convert, with no counts of their own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# ONNX ops that pycls counts (SCALING.md §2); everything else counts 0 by convention.
COUNTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "BatchNormalization"}

ACTIVATIONS = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Elu", "Selu",
               "Gelu", "QuickGelu", "FastGelu", "Softplus", "Mish", "PRelu", "Swish", "BiasGelu", "Erf"}
POOLS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax"}
REFORMAT = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
            "Identity", "Cast", "Pad", "SpaceToDepth", "DepthToSpace", "Expand", "Tile", "Shape",
            "ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Copy", "Reformat", "Shuffle"}
ELEMENTWISE = {"Add", "Sum", "Sub", "Mul", "Div"}
NORMS = {"BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization"}

CATEGORIES = ("conv", "depthwise conv", "SE", "linear", "pooling", "activation", "elementwise",
              "normalization", "reformat/copy", "other", "not executed")


class OnnxGraph:
    """Index of the exported model: producers, consumers, constants, weight shapes."""

    def __init__(self, model):
        import onnx

        if isinstance(model, (str, Path)):
            model = onnx.load(str(model), load_external_data=False)
        self.model = model
        graph = model.graph
        self.nodes = {}
        self.order = []
        for i, node in enumerate(graph.node):
            name = node.name or node.output[0] or f"{node.op_type}_{i}"   # as complexity.count_onnx
            self.nodes[name] = node
            self.order.append(name)
        self.initializers = {t.name: tuple(t.dims) for t in graph.initializer}
        self.graph_inputs = {i.name for i in graph.input} - set(self.initializers)
        self.graph_outputs = {o.name for o in graph.output}
        self.producer: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for name in self.order:
            node = self.nodes[name]
            for t in node.output:
                if t:
                    self.producer[t] = name
            for t in node.input:
                if t:
                    self.consumers[t].append(name)
        self.constant = self._constant_nodes()

    def _constant_nodes(self) -> set[str]:
        """Nodes whose inputs are all initializers or other constants (folded by every backend)."""
        const_tensors = set(self.initializers)
        constant = set()
        for name in self.order:                      # ONNX graphs are topologically sorted
            node = self.nodes[name]
            inputs = [t for t in node.input if t]
            if node.op_type in ("Constant", "ConstantOfShape") and not inputs or \
                    inputs and all(t in const_tensors for t in inputs):
                constant.add(name)
                const_tensors.update(t for t in node.output if t)
        return constant

    def inputs(self, name: str) -> list[str]:
        return [t for t in self.nodes[name].input if t]

    def outputs(self, name: str) -> list[str]:
        return [t for t in self.nodes[name].output if t]

    def weight_shape(self, name: str) -> tuple | None:
        node = self.nodes[name]
        return self.initializers.get(node.input[1]) if len(node.input) > 1 else None

    def attribute(self, name: str, key: str, default=None):
        for a in self.nodes[name].attribute:
            if a.name == key:
                import onnx
                return onnx.helper.get_attribute_value(a)
        return default

    def is_depthwise(self, name: str) -> bool:
        node = self.nodes[name]
        if node.op_type != "Conv":
            return False
        group = self.attribute(name, "group", 1)
        shape = self.weight_shape(name)
        return group > 1 and shape is not None and len(shape) > 1 and shape[1] == 1

    def se_nodes(self) -> set[str]:
        """Squeeze-and-excitation blocks, found structurally: a Mul that gates tensor x with a value
        computed (within a few nodes) from a global pool of x. Every node between pool and Mul is SE."""
        se: set[str] = set()
        for name in self.order:
            node = self.nodes[name]
            if node.op_type != "Mul" or len([t for t in node.input if t]) != 2:
                continue
            for x, gate in (node.input, node.input[::-1]):
                path = self._path_to_pool(gate, x, depth=10)
                if path:
                    se.update(path)
                    se.add(name)
                    break
        return se

    def _path_to_pool(self, tensor: str, source: str, depth: int) -> list[str] | None:
        """Nodes from ``tensor`` back to a global pool whose input is ``source`` (DFS, bounded)."""
        name = self.producer.get(tensor)
        if name is None or depth == 0 or name in self.constant:
            return None
        node = self.nodes[name]
        if node.op_type in GLOBAL_POOLS and node.input and node.input[0] == source:
            return [name]
        for t in self.inputs(name):
            if t in self.initializers:
                continue
            sub = self._path_to_pool(t, source, depth - 1)
            if sub:
                return sub + [name]
        return None


@dataclass
class Resolution:
    """What one engine layer is, in terms of the exported graph."""

    anchors: list[str] = field(default_factory=list)   # exported nodes the layer names
    produces: list[str] = field(default_factory=list)  # tensors (backend names) it writes
    consumes: list[str] = field(default_factory=list)  # tensors (backend names) it reads
    expect: list[str] = field(default_factory=list)    # op types of all the exported nodes it fuses,
                                                       # where the backend says (ORT: activation attrs)


class Resolver:
    """Generic: the layer's own ``onnx_nodes``, exact names, TensorRT-style ``A + B`` names, and
    names that start with a node or tensor name of the exported graph. Backends subclass."""

    name = "generic"

    def __init__(self, graph: OnnxGraph):
        self.graph = graph

    def resolve(self, event) -> Resolution:
        res = Resolution()
        for n in getattr(event, "onnx_nodes", ()) or ():
            self._add(res, n)
        if not res.anchors:
            for part in self.name_parts(event.name):
                self._add(res, part)
        return res

    def name_parts(self, name: str) -> list[str]:
        parts = [p.strip() for p in re.split(r" \+ ", name)]
        return [re.sub(r"^\{ForeignNode\[(.*)\]\}$", r"\1", p) for p in parts if p]

    def _add(self, res: Resolution, name: str) -> bool:
        """Resolve one name: a node, or a tensor (its producer), as is or as the backend derived it."""
        g = self.graph
        for candidate in (name, *self.derived(name)):
            if candidate in g.nodes:
                res.anchors.append(candidate)
                return True
            if candidate in g.producer:
                res.anchors.append(g.producer[candidate])
                return True
        return False

    def derived(self, name: str) -> list[str]:
        return []


class OrtResolver(Resolver):
    """ONNX Runtime's optimised graph (the file the engine manifest points to) against the export.

    Names seen in real optimised models (CPU EP, ORT_ENABLE_ALL): NCHWc convolutions, pools and
    their fused activations/residual adds are named ``<output tensor of the last fused node>_nchwc``;
    element-wise fusions ``<last node>/<Kind>Fusion/`` (QuickGelu = x*sigmoid(x)); FusedConv keeps
    the Conv's name; layout helpers are ``ReorderInput[_token_N]``, ``ReorderOutput[_token_N]``,
    ``Reshape_token_N``."""

    name = "onnxruntime"
    HELPERS = {"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost"}
    SUFFIXES = (re.compile(r"_nchwc$"), re.compile(r"/[A-Za-z0-9]+Fusion/?$"),
                re.compile(r"_(?:FusedConv|fused|Fused)$"))

    def __init__(self, graph: OnnxGraph, optimised=None):
        super().__init__(graph)
        self.optimised = OnnxGraph(optimised) if optimised is not None and not isinstance(optimised, OnnxGraph) \
            else optimised

    def derived(self, name: str) -> list[str]:
        out = []
        for rx in self.SUFFIXES:
            stripped = rx.sub("", name)
            if stripped != name:
                out.append(stripped)
        return out

    def resolve(self, event) -> Resolution:
        res = super().resolve(event)
        opt = self.optimised
        if opt is not None and event.name in opt.nodes:
            res.produces = opt.outputs(event.name)
            res.consumes = [t for t in opt.inputs(event.name) if t not in opt.initializers]
            node = opt.nodes[event.name]
            if node.op_type in self.HELPERS:
                return Resolution(produces=res.produces, consumes=res.consumes)   # layout copies
            # Exported tensors the optimised node still writes: their producers are fused members
            # (FusedConv writes its activation's output).
            for t in res.produces:
                p = self.graph.producer.get(t)
                if p is not None and p not in res.anchors:
                    res.anchors.append(p)
            res.expect = self.fused_ops(opt, event.name)
        return res

    @staticmethod
    def fused_ops(opt: OnnxGraph, name: str) -> list[str]:
        """The exported op types an optimised node executes, from its op type and attributes:
        NCHWc / FusedConv convolutions carry ``activation`` and an optional summed input (the
        residual Add, input 4); QuickGelu is x * sigmoid(x)."""
        node = opt.nodes[name]
        if node.op_type in ("Conv", "FusedConv") and node.domain in ("com.microsoft.nchwc", "com.microsoft"):
            ops = ["Conv"]
            if len(node.input) > 3 and node.input[3]:
                ops.append("Add")
            act = opt.attribute(name, "activation")
            if act:
                ops.append(act.decode() if isinstance(act, bytes) else str(act))
            return ops
        if node.op_type == "QuickGelu":
            return ["Sigmoid", "Mul"]
        return []


RESOLVERS = {"ort": OrtResolver, "onnxruntime": OrtResolver}


def register_resolver(backend: str, cls) -> None:
    """Let a backend (e.g. TensorRT) plug in its own naming rules."""
    RESOLVERS[backend] = cls


def make_resolver(backend: str, graph: OnnxGraph, optimised=None) -> Resolver:
    cls = RESOLVERS.get(backend, Resolver)
    return cls(graph, optimised) if issubclass(cls, OrtResolver) else cls(graph)


@dataclass
class Assignment:
    owner: dict[str, int]              # exported node -> index of the layer that executes it
    helpers: dict[int, int]            # helper layer index -> index of the layer it serves (-1: none)
    not_executed: list[str]            # constant / eliminated exported nodes


def assign(events, graph: OnnxGraph, resolver: Resolver) -> Assignment:
    """Give every exported node to one layer (see the module docstring)."""
    resolutions = [resolver.resolve(e) for e in events]
    owner: dict[str, int] = {}
    for i, res in enumerate(resolutions):
        for n in res.anchors:
            if n not in owner and n not in graph.constant:
                owner[n] = i
    # 2a. fused members the backend describes: grow each layer from its anchors along interior edges
    # (a tensor with a single consumer, never materialised) to nodes of the expected op types.
    for i, res in enumerate(resolutions):
        if res.expect:
            _grow(graph, i, res, owner)
    # 2b. other unnamed members of fused layers: join the consumers' layer, else the producers'.
    pending = [n for n in graph.order if n not in owner and n not in graph.constant]
    changed = True
    while pending and changed:
        changed = False
        for strict in (True, False):
            rest = []
            for n in pending:
                target = _neighbour_owner(graph, n, owner, strict)
                if target is not None:
                    owner[n] = target
                    changed = True
                else:
                    rest.append(n)
            pending = rest
            if changed:
                break
    not_executed = [n for n in graph.order if n not in owner]
    # 4. helpers: the layer that writes what they read (through the backend's graph), else the reader.
    helpers = {}
    anchored = set(owner.values())
    writer = {}
    readers = defaultdict(list)
    for i, res in enumerate(resolutions):
        for t in res.produces:
            writer[t] = i
        for t in res.consumes:
            readers[t].append(i)
    for i, res in enumerate(resolutions):
        if i in anchored:
            continue
        helpers[i] = _serve(i, resolutions, writer, readers, anchored, graph)
    return Assignment(owner, helpers, not_executed)


def _grow(graph: OnnxGraph, i: int, res: Resolution, owner: dict) -> None:
    """``res.expect`` is the fused chain in execution order (e.g. Conv, Add, Relu): place an anchor
    in it and walk up- and downstream, one op of the chain per step, along interior edges only (a
    tensor with a single consumer: a fused kernel never writes it out)."""
    chain = res.expect
    start = next((n for n in res.anchors if owner.get(n) == i and graph.nodes[n].op_type in chain), None)
    if start is None:
        return
    pos = chain.index(graph.nodes[start].op_type)

    def step(cur: str, op: str, upstream: bool) -> str | None:
        if upstream:
            pairs = [(graph.producer.get(t), t) for t in graph.inputs(cur)]
            pairs = [(p, t) for p, t in pairs if p is not None and graph.consumers.get(t) == [cur]]
        else:
            pairs = [(c, t) for t in graph.outputs(cur) for c in graph.consumers.get(t, ())
                     if len(graph.consumers[t]) == 1]
        for node, t in pairs:
            if t not in graph.graph_outputs and graph.nodes[node].op_type == op and owner.get(node, i) == i \
                    and node not in graph.constant:
                return node
        return None

    for upstream, ops in ((True, reversed(chain[:pos])), (False, chain[pos + 1:])):
        cur = start
        for op in ops:
            nxt = step(cur, op, upstream)
            if nxt is None:
                break
            owner[nxt] = i
            cur = nxt


def _neighbour_owner(graph: OnnxGraph, n: str, owner: dict, strict: bool) -> int | None:
    consumers = [c for t in graph.outputs(n) for c in graph.consumers.get(t, ())]
    owners = {owner.get(c) for c in consumers}
    if consumers and None not in owners and len(owners) == 1:
        return owners.pop()
    if strict:
        return None
    producers = [graph.producer[t] for t in graph.inputs(n) if t in graph.producer
                 and graph.producer[t] not in graph.constant]
    owners = {owner.get(p) for p in producers} - {None}
    if len(owners) == 1:
        return owners.pop()
    owners = {owner.get(c) for c in consumers} - {None}
    return min(owners) if owners else None


def _serve(i, resolutions, writer, readers, anchored, graph, depth=8) -> int:
    """Follow a helper's data upstream, then downstream, to the first anchored layer."""
    seen = {i}
    frontier = [i]
    for _ in range(depth):
        nxt = []
        for j in frontier:
            for t in resolutions[j].consumes:
                w = writer.get(t)
                if w is None and t in graph.producer:
                    continue
                if w is not None and w not in seen:
                    if w in anchored:
                        return w
                    seen.add(w)
                    nxt.append(w)
        frontier = nxt
    frontier = [i]
    for _ in range(depth):
        nxt = []
        for j in frontier:
            for t in resolutions[j].produces:
                for r in readers.get(t, ()):
                    if r in anchored:
                        return r
                    if r not in seen:
                        seen.add(r)
                        nxt.append(r)
        frontier = nxt
    return -1


def categorise(graph: OnnxGraph, members, se: set[str], op_type: str = "") -> str:
    """One category for a layer from its exported members (a fused SE conv is SE, a conv with a
    fused activation is conv...); backend helpers by their own op type."""
    if not members:
        if op_type in REFORMAT or "reorder" in op_type.lower() or "reformat" in op_type.lower() \
                or "copy" in op_type.lower() or "shuffle" in op_type.lower():
            return "reformat/copy"
        return "other"
    ops = [graph.nodes[m].op_type for m in members]
    if any(m in se for m in members):
        return "SE"
    if any(graph.is_depthwise(m) for m in members):
        return "depthwise conv"
    for cat, kinds in (("conv", {"Conv", "ConvTranspose"}), ("linear", {"Gemm", "MatMul"}), ("pooling", POOLS),
                       ("normalization", NORMS), ("activation", ACTIVATIONS)):
        if any(o in kinds for o in ops):
            return cat
    if "Sigmoid" in ops or ("Mul" in ops and _is_swish(graph, members)):
        return "activation"
    if any(o in ELEMENTWISE for o in ops):
        return "elementwise"
    if all(o in REFORMAT for o in ops):
        return "reformat/copy"
    return "other"


def _is_swish(graph: OnnxGraph, members) -> bool:
    for m in members:
        node = graph.nodes[m]
        if node.op_type == "Mul":
            prods = [graph.producer.get(t) for t in node.input]
            if any(p and graph.nodes[p].op_type == "Sigmoid" for p in prods):
                return True
    return False
