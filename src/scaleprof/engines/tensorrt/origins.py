"""Which ONNX nodes a TensorRT layer executes, from its name and the inspector's layer JSON.

Two users: the engine labels every profiled layer with its ONNX nodes (``InspectorLayerMap``, from
the engine's graph JSON and the ONNX node order it saved at build time), and the profile stage maps
layers onto the exported graph with ``TensorRTLayerResolver`` (``TensorRTEngine.layer_resolver``).
The rules (``resolve_layer``), in order: the inspector's ``Metadata`` ONNX layer list; a Myelin
``{ForeignNode[FIRST...LAST]}`` region, expanded to every node from FIRST to LAST and flagged
opaque; the fused name (``A + B``, ``PWN(A, PWN(B, C))``). Reformat and copy layers map to none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from scaleprof.core.onnx_file import load_model
from scaleprof.engines.anchors import LayerAnchors, LayerResolver
from scaleprof.engines.tensorrt.inspector import InspectorGraph, InspectorLayer, strip_profile

_FOREIGN = re.compile(r"^\{ForeignNode\[(.*)\]\}$", re.S)
OPAQUE_TYPES = {"myelin", "foreignnode"}
NO_NODE_TYPES = {"reformat", "noop", "signal", "wait", "shuffle"}   # engine bookkeeping layers


def split_fused(name: str) -> list[str]:
    """Candidate ONNX names inside a fused TensorRT layer name: 'A + B', 'PWN(A, PWN(B, C))'."""
    out: list[str] = []
    for part in name.split(" + "):
        part = part.strip()
        m = re.match(r"^PWN\((.*)\)$", part, re.S)
        if m:
            depth, start = 0, 0
            inner = m.group(1)
            for i, ch in enumerate(inner):
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                elif ch == "," and depth == 0:
                    out += split_fused(inner[start:i])
                    start = i + 1
            out += split_fused(inner[start:])
        elif part:
            out.append(part)
    return out


def foreign_node_span(name: str, node_order: Sequence[str]) -> tuple[str, ...] | None:
    """All ONNX nodes a Myelin '{ForeignNode[FIRST...LAST]}' layer covers, in ``node_order``
    (the ONNX graph's topological node list): FIRST through LAST inclusive. None when ``name``
    is not a ForeignNode; () when its ends are not in ``node_order``."""
    m = _FOREIGN.match(strip_profile(name)[0].strip())
    if not m:
        return None
    body = m.group(1)
    index = {n: i for i, n in enumerate(node_order)}
    if body in index:
        return (body,)
    # '...' may also occur inside a node name: try every split point, keep one whose halves are nodes
    for pos in [m.start() for m in re.finditer(r"(?=\.\.\.)", body)]:
        first, last = body[:pos], body[pos + 3:]
        if first in index and last in index:
            lo, hi = sorted((index[first], index[last]))
            return tuple(node_order[lo:hi + 1])
    return ()


@dataclass(frozen=True)
class LayerOrigin:
    """The ONNX nodes one TensorRT layer was built from, and how that was found out."""

    onnx_nodes: tuple[str, ...]
    opaque: bool                      # a fused region whose inner split is unknown (Myelin)
    how: str                          # "metadata", "foreign-node", "name", "none"


def resolve_layer(name: str, layer: InspectorLayer | None = None,
                  node_order: Sequence[str] = ()) -> LayerOrigin:
    """Map one TensorRT layer to the ONNX nodes it executes.

    1. The inspector's ``Metadata`` ONNX layer list, when present (DETAILED builds);
    2. a Myelin ``{ForeignNode[FIRST...LAST]}`` name: every ONNX node from FIRST to LAST in the
       graph's node order, flagged opaque;
    3. the fused name ('A + B', 'PWN(A, B)'), keeping the parts that are ONNX node names
       (all parts when ``node_order`` is empty);
    reformatting / copy layers map to no node.
    Myelin layers are opaque whichever rule mapped them.
    """
    base = strip_profile(name)[0]
    ltype = (layer.layer_type if layer else "").lower()
    opaque = ltype in OPAQUE_TYPES or base.startswith("{ForeignNode[") or base.startswith("__myl")
    known = set(node_order)
    if layer is not None and layer.metadata_nodes:
        nodes = layer.metadata_nodes
        span = foreign_node_span(base, node_order) if node_order else None
        if span and len(span) > len(nodes):        # metadata can list only the region's ends
            nodes = tuple(dict.fromkeys(nodes + span))
        return LayerOrigin(nodes, opaque, "metadata")
    span = foreign_node_span(base, node_order)
    if span is not None:
        if not span and not node_order:            # no graph to expand against: keep the ends
            body = _FOREIGN.match(base.strip()).group(1)
            span = tuple(p for p in body.split("...") if p)
        return LayerOrigin(span, True, "foreign-node")
    if ltype in NO_NODE_TYPES or base.startswith("Reformatting CopyNode") or "copy" == base.lower():
        return LayerOrigin((), opaque, "none")
    parts = split_fused(base)
    nodes = tuple(dict.fromkeys(p for p in parts if (p in known or not known)))
    return LayerOrigin(nodes, opaque, "name" if nodes else "none")


class InspectorLayerMap:
    """TensorRT layer name -> its LayerOrigin (or, called, (ONNX nodes, opaque)): what the engine
    puts in its LayerEvents.

    Built from an engine's inspector JSON and the ONNX graph's node order; looks a profiled
    layer up by its full name, then without its ``[profile k]`` suffix."""

    def __init__(self, graph: InspectorGraph | None = None, node_order: Sequence[str] = ()):
        self.graph = graph
        self.node_order = tuple(node_order)
        self._layers = graph.by_name() if graph else {}
        self._base = {}
        for layer in (graph.layers if graph else ()):
            self._base.setdefault(layer.base_name, layer)

    def layer(self, name: str) -> InspectorLayer | None:
        return self._layers.get(name) or self._base.get(strip_profile(name)[0])

    def origin(self, name: str) -> LayerOrigin:
        return resolve_layer(name, self.layer(name), self.node_order)

    def __call__(self, name: str) -> tuple[tuple[str, ...], bool]:
        r = self.origin(name)
        return r.onnx_nodes, r.opaque


def onnx_node_order(onnx_path: str | Path) -> tuple[str, ...]:
    """Node names of an ONNX graph in file order (topological for a valid model); weights are
    not loaded."""
    return tuple(n.name for n in load_model(onnx_path, load_weights=False).graph.node)


def summarize_graph(graph: InspectorGraph, node_order: Sequence[str] = (), profile: int = 0) -> dict:
    """Counts for a report: layers, by type, fused and opaque layers, ONNX node coverage."""
    layers = graph.profile_layers(profile) or graph.layers
    layer_map = InspectorLayerMap(graph, node_order)
    by_type: dict[str, int] = {}
    covered: set[str] = set()
    opaque = fused = 0
    for layer in layers:
        by_type[layer.layer_type or "?"] = by_type.get(layer.layer_type or "?", 0) + 1
        r = layer_map.origin(layer.name)
        covered.update(r.onnx_nodes)
        opaque += r.opaque
        fused += len(r.onnx_nodes) > 1
    return {"layers": len(layers), "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "fused_layers": fused, "opaque_layers": opaque, "onnx_nodes_covered": len(covered),
            "onnx_nodes": len(node_order) or None, "detailed": graph.detailed, "schema": graph.schema}


class TensorRTLayerResolver(LayerResolver):
    """The profile stage's rules for TensorRT layers (``TensorRTEngine.layer_resolver``): the
    layer's own ``onnx_nodes`` (inspector Metadata, filled in by the engine), else its fused name
    ('A + PWN(B, C)', with any ``[profile k]`` suffix dropped), else a Myelin
    ``{ForeignNode[FIRST...LAST]}`` expanded over the exported graph's node order."""

    name = "tensorrt"

    def name_parts(self, name: str) -> list[str]:
        return split_fused(strip_profile(name)[0])

    def resolve(self, event) -> LayerAnchors:
        res = super().resolve(event)
        if not res.anchors:
            for node in resolve_layer(event.name, None, tuple(self.graph.order)).onnx_nodes:
                self.add_anchor(res, node)
        return res
