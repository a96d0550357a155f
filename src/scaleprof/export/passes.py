"""Graph clean-up after the exporter: fold what is constant, so no shape arithmetic reaches a runtime.

The TorchScript exporter leaves small constant sub-graphs behind: ``F.pad``'s pads go through
ConstantOfShape/Concat/Slice(step -1)/Cast chains it cannot fold ("Only steps=1 can be constant
folded"), and de-duplicated weights are read through Identity nodes. TensorRT's ONNX parser
needs Pad's pads as an initializer, so these are folded here. Nothing else changes: node names
(the module scopes) and every computing node are kept as they are.
"""

from __future__ import annotations

import numpy as np

# Outputs bigger than this are not folded (a folded weight copy would only bloat the file).
MAX_FOLDED_ELEMENTS = 1 << 16
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                     "Bernoulli", "Dropout"}


def fold_constants(model) -> int:
    """Fold nodes whose inputs are all constant into initializers, in place. Returns nodes removed."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    consts: dict[str, np.ndarray | None] = {i.name: None for i in graph.initializer}  # None: not loaded yet
    inits = {i.name: i for i in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    new_nodes, new_inits, removed = [], [], 0
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)

    def value(name):
        if consts.get(name) is None and name in inits:
            consts[name] = numpy_helper.to_array(inits[name])
        return consts[name]

    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        if node.domain not in ("", "ai.onnx") or node.op_type in _NONDETERMINISTIC:
            new_nodes.append(node)
            continue
        if node.op_type == "Identity" and node.input[0] in consts and node.output[0] not in graph_outputs:
            rename[node.output[0]] = node.input[0]
            removed += 1
            continue
        if node.op_type == "Constant" and node.output[0] not in graph_outputs:
            attr = node.attribute[0]
            if attr.name == "value":
                arr = numpy_helper.to_array(attr.t)
                consts[node.output[0]] = arr
                new_inits.append(numpy_helper.from_array(arr, node.output[0]))
                removed += 1
                continue
        real_inputs = [n for n in node.input if n]
        if real_inputs and all(n in consts for n in real_inputs) and not (set(node.output) & graph_outputs):
            folded = _evaluate(node, [value(n) if n else None for n in node.input], opset)
            if folded is not None and all(o.size <= MAX_FOLDED_ELEMENTS for o in folded):
                for name, arr in zip(node.output, folded):
                    consts[name] = arr
                    new_inits.append(numpy_helper.from_array(arr, name))
                removed += 1
                continue
        new_nodes.append(node)

    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    _drop_unused_initializers(graph)
    # value_info of removed intermediates is stale: shape inference recomputes it.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return removed


def _evaluate(node, inputs, opset):
    import onnx
    from onnx.reference import ReferenceEvaluator

    try:
        tmp_inputs = [f"in{i}" if n else "" for i, n in enumerate(node.input)]
        clone = onnx.helper.make_node(node.op_type, tmp_inputs, [f"out{i}" for i in range(len(node.output))],
                                      domain=node.domain)
        clone.attribute.extend(node.attribute)
        feeds = {f"in{i}": v for i, v in enumerate(inputs) if v is not None}
        graph = onnx.helper.make_graph(
            [clone], "fold",
            [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for k, v in feeds.items()],
            [onnx.helper.make_empty_tensor_value_info(f"out{i}") for i in range(len(node.output))])
        tiny = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        return [np.asarray(o) for o in ReferenceEvaluator(tiny).run(None, feeds)]
    except Exception:  # an op the reference runtime lacks: leave the node in place
        return None


def _drop_unused_initializers(graph) -> None:
    used = {n for node in graph.node for n in node.input} | {o.name for o in graph.output}
    dropped = {i.name for i in graph.initializer if i.name not in used}
    if dropped:
        keep = [i for i in graph.initializer if i.name not in dropped]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        inputs = [i for i in graph.input if i.name not in dropped]
        del graph.input[:]
        graph.input.extend(inputs)


def dynamic_pads(model) -> list[str]:
    """Names of Pad nodes whose pads are not an initializer (what breaks TensorRT's parser)."""
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "Pad" and len(n.input) > 1 and n.input[1] not in inits]
