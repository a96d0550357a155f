"""Map measured engine layers back to the exported ONNX nodes they execute.

Backends rename and fuse nodes. The engine's own *layer resolver* (``Engine.layer_resolver(graph)``,
scaleprof.engines.anchors) turns one profiled layer into *anchor* nodes of the exported graph; the
graph walk below then gives every remaining exported node to exactly one layer, so per-layer counts
sum to the model's totals:

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

from collections import defaultdict
from dataclasses import dataclass

from scaleprof.engines.anchors import LayerAnchors, LayerResolver, OnnxGraph


@dataclass
class Assignment:
    owner: dict[str, int]              # exported node -> index of the layer that executes it
    helpers: dict[int, int]            # helper layer index -> index of the layer it serves (-1: none)
    not_executed: list[str]            # constant / eliminated exported nodes


def assign(events, graph: OnnxGraph, resolver: LayerResolver) -> Assignment:
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


def _grow(graph: OnnxGraph, i: int, res: LayerAnchors, owner: dict) -> None:
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
