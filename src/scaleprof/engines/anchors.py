"""How an engine's layers are named in terms of the exported ONNX graph.

Backends rename and fuse nodes, so each Engine hands the profile stage a *layer resolver*
(``Engine.layer_resolver(graph)``): it turns one profiled LayerEvent into ``LayerAnchors``, the
exported nodes the layer names plus, where the backend knows them, the tensors it reads and writes
and the op types it fuses. The profile stage (scaleprof.profile.mapping) then gives every exported
node to exactly one layer. Here:

- ``OnnxGraph``: an index of an ONNX model (nodes in order, producers, consumers, constant-only
  nodes), read with scaleprof.core.onnx_file;
- ``LayerAnchors``: what one layer is, in exported nodes;
- ``LayerResolver``: the generic rules (the event's own ``onnx_nodes``, exact node or tensor
  names, fused ``A + B`` names); ONNX Runtime's and TensorRT's resolvers extend it
  (scaleprof.engines.ort_profile, scaleprof.engines.tensorrt.origins).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from scaleprof.core.onnx_file import load_model


class OnnxGraph:
    """Index of one ONNX model: producers, consumers, constants, weight shapes."""

    def __init__(self, model):
        if isinstance(model, (str, Path)):
            model = load_model(model, load_weights=False)
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
        """The shape of the node's weight (its second input): an initializer, or in a QDQ file the
        initializer a DequantizeLinear reads."""
        node = self.nodes[name]
        if len(node.input) < 2:
            return None
        weight = node.input[1]
        source = self.producer.get(weight)
        if source is not None and self.nodes[source].op_type == "DequantizeLinear":
            weight = self.nodes[source].input[0]
        return self.initializers.get(weight)

    def attribute(self, name: str, key: str, default=None):
        for a in self.nodes[name].attribute:
            if a.name == key:
                import onnx

                return onnx.helper.get_attribute_value(a)
        return default


@dataclass
class LayerAnchors:
    """What one engine layer is, in terms of the exported graph."""

    anchors: list[str] = field(default_factory=list)   # exported nodes the layer names
    produces: list[str] = field(default_factory=list)  # tensors (backend names) it writes
    consumes: list[str] = field(default_factory=list)  # tensors (backend names) it reads
    expect: list[str] = field(default_factory=list)    # op types of all the exported nodes it fuses,
                                                       # where the backend says (ORT: activation attrs)


class LayerResolver:
    """Generic: the layer's own ``onnx_nodes``, exact names, TensorRT-style ``A + B`` names, and
    names that start with a node or tensor name of the exported graph. Backends subclass."""

    name = "generic"

    def __init__(self, graph: OnnxGraph):
        self.graph = graph

    def resolve(self, event) -> LayerAnchors:
        res = LayerAnchors()
        for n in getattr(event, "onnx_nodes", ()) or ():
            self.add_anchor(res, n)
        if not res.anchors:
            for part in self.name_parts(event.name):
                self.add_anchor(res, part)
        return res

    def name_parts(self, name: str) -> list[str]:
        parts = [p.strip() for p in re.split(r" \+ ", name)]
        return [re.sub(r"^\{ForeignNode\[(.*)\]\}$", r"\1", p) for p in parts if p]

    def add_anchor(self, res: LayerAnchors, name: str) -> bool:
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
