"""What a detector's nodes do, read from the structure of the exported graph (no names needed).

Three roles a classifier's graph does not have, which the layer categories report:

- head: nodes whose results reach exactly one of several graph outputs. A detector's class and box
  nets run once per pyramid level and each run feeds one output (class P3, box P5, ...); the
  backbone and the feature pyramid feed many. A graph with one output has no head in this sense.
- fusion: the weighted sum of feature maps a BiFPN node computes (EfficientDet's fast normalised
  fusion, or a plain sum): PyTorch's ``torch.stack(maps).sum()`` exports as a ReduceSum over a
  Concat of Unsqueezed maps; the sum, the stacking and the scalar weighting (Mul/Div) feeding only
  it are the fusion.
- resample: Resize/Upsample (the top-down path's upsampling) and the max/average pools that
  downsample a feature map for a fusion or for the next pyramid level (the bottom-up path, P6/P7).

``detector_roles`` maps node names to one of these; scaleprof.profile.categories gives a layer the
role of its members (a head layer is head whatever it computes; fusion and resample rank after the
convolutions, since a backend may fold a fusion weight into the conv before it).
"""

from __future__ import annotations

from collections import defaultdict

_STACKING = {"Unsqueeze", "Concat"}
_WEIGHTING = {"Mul", "Div"}
_RESIZE = {"Resize", "Upsample"}
_POOLS = {"MaxPool", "AveragePool"}


def detector_roles(graph) -> dict[str, str]:
    """node name -> "head" | "fusion" | "resample" for the nodes that have one of these roles."""
    fusion = fusion_nodes(graph)
    roles = {n: "resample" for n in resample_nodes(graph, fusion)}
    roles.update({n: "fusion" for n in fusion})
    roles.update({n: "head" for n in head_nodes(graph)})
    return roles


def head_nodes(graph) -> set[str]:
    """Nodes whose results reach exactly one graph output, in a graph with several outputs."""
    if len(graph.graph_outputs) < 2:
        return set()
    reach: dict[str, set] = defaultdict(set)
    for name in reversed(graph.order):          # consumers come after producers
        for tensor in graph.outputs(name):
            if tensor in graph.graph_outputs:
                reach[name].add(tensor)
            for consumer in graph.consumers.get(tensor, ()):
                reach[name] |= reach[consumer]
    return {n for n in graph.order if len(reach[n]) == 1 and n not in graph.constant}


def fusion_nodes(graph) -> set[str]:
    """Each ReduceSum over a Concat, with the stacking and weighting nodes that feed only it."""
    found: set[str] = set()
    for name in graph.order:
        node = graph.nodes[name]
        concat = graph.producer.get(node.input[0]) if node.op_type == "ReduceSum" and node.input else None
        if concat is None or graph.nodes[concat].op_type != "Concat":
            continue
        members = {name, concat}
        frontier = [graph.producer[t] for t in graph.inputs(concat) if t in graph.producer]
        while frontier:
            current = frontier.pop()
            if current in members or current in graph.constant \
                    or graph.nodes[current].op_type not in _STACKING | _WEIGHTING:
                continue
            consumers = {c for t in graph.outputs(current) for c in graph.consumers.get(t, ())}
            if not consumers <= members:
                continue
            members.add(current)
            frontier += [graph.producer[t] for t in graph.inputs(current) if t in graph.producer]
        found |= members
    return found


def resample_nodes(graph, fusion: set[str]) -> set[str]:
    """Resize nodes, and pools whose output goes to a fusion or to another resampling node."""
    found = set()
    for name in graph.order:
        op = graph.nodes[name].op_type
        if op in _RESIZE:
            found.add(name)
        elif op in _POOLS:
            consumers = [c for t in graph.outputs(name) for c in graph.consumers.get(t, ())]
            if any(c in fusion or graph.nodes[c].op_type in _POOLS | _RESIZE for c in consumers):
                found.add(name)
    return found
