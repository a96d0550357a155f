"""The torch engine's layer profile: torch.profiler times per module, mapped to exported ONNX nodes.

``profile_modules`` runs the eager model under ``torch.profiler`` with a ``record_function`` range
around every module's forward (hooks) and one range per iteration. ``module_events`` turns the
profiler's events into one LayerEvent per module (its qualified name, e.g. ``blocks.0.0.conv_dw``)
with its *exclusive* time per iteration: the operators it calls itself, not its child modules'
(CPU time on the CPU, kernel time on CUDA), so the times add up without double counting; the Python
and hook time between operators, which no ONNX node stands for, is left out. ``onnx_node_map``
gives each module the exported nodes in its scope (``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``),
and ``merge_folded_norms`` merges a BatchNorm the export folded into its conv (no ONNX node of its
own) into that conv's event, ``blocks.0.0.conv_dw + blocks.0.0.bn1``.
"""

from __future__ import annotations

import ast
import os
import re

from scaleprof.engines.base import LayerEvent, LayerTrace

ITER_LABEL = "scaleprof/iter/"
MODULE_LABEL = "scaleprof/module/"
ROOT = "<model>"                 # LayerEvent name of the top-level module's own work


def module_of_node(node, modules: set[str]) -> str:
    """The qualified name of the module an exported ONNX node came from ('' for the top level).

    TorchScript exporter: the node name is the scope path, ``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``
    (each component a module attribute; a container's children carry its segment as a prefix, and the
    k-th repeated call of a module, such as a detector head run per pyramid level, ends in ``_<k>``). Dynamo exporter: the
    ``pkg.torch.onnx.name_scopes`` metadata lists the qualified names from the top down.
    """
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            return next((s for s in reversed(scopes) if s in modules), "")
    qualname, best, previous = "", "", ""
    for part in node.name.strip("/").split("/")[:-1]:
        # a container's children repeat its segment as a prefix ("blocks/blocks.0"), at any depth
        child = part[len(previous) + 1:] if previous and part.startswith(previous + ".") else part
        previous = part
        qualname = f"{qualname}.{child}" if qualname else child
        if qualname not in modules:     # the k-th repeated call of a module's scope: "<name>_<k>"
            qualname = re.sub(r"_\d+$", "", qualname)
        if qualname in modules:
            best = qualname
        else:
            break
    return best


def onnx_node_map(onnx_model, model) -> dict[str, list[str]]:
    """module qualified name -> exported ONNX node names in its own scope (not its children's)."""
    modules = {name for name, _ in model.named_modules()}
    mapping: dict[str, list[str]] = {}
    for node in onnx_model.graph.node:
        if node.op_type in ("Constant", "Identity"):
            continue
        mapping.setdefault(module_of_node(node, modules), []).append(node.name)
    return mapping


def profile_modules(model, x, iterations: int, warmup: int, on_cuda: bool, sync, node_map: dict) -> LayerTrace:
    """One LayerEvent per module of ``model`` run on ``x``, as torch.profiler measured it (see the
    module docstring); ``sync()`` waits for the device after each iteration."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    # Kineto (the profiler's C++ side) writes its start/stop markers and, without a GPU, an "ERROR"
    # from its GPU probe straight to stderr on success; failures still reach us as exceptions.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    names = {id(m): name for name, m in model.named_modules()}
    stack: list = []

    def enter(module, _inputs):
        rf = record_function(MODULE_LABEL + names[id(module)])
        rf.__enter__()
        stack.append(rf)

    def leave(module, _inputs, _output):
        stack.pop().__exit__(None, None, None)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        handles = [h for m in model.modules()
                   for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
        try:
            with profile(activities=activities) as prof:
                for i in range(iterations):
                    with record_function(f"{ITER_LABEL}{i}"):
                        model(x)
                    sync()
        finally:
            for h in handles:
                h.remove()
    classes = {name: type(m).__name__ for name, m in model.named_modules()}
    events = module_events(prof.events(), iterations, on_cuda, node_map, classes)
    return LayerTrace(events, iterations, "torch.profiler")


def module_events(function_events, iterations: int, on_cuda: bool, node_map: dict, classes: dict
                  ) -> tuple[LayerEvent, ...]:
    """torch.profiler FunctionEvents -> one LayerEvent per module with its exclusive time per iteration:
    the operators it calls itself, not those of its child modules (see own_ms)."""
    def span_ms(evt) -> float:
        return (evt.device_time_total if on_cuda else evt.cpu_time_total) / 1e3

    def inner_modules(evt):
        """The nearest module ranges below ``evt`` (its direct child modules' calls)."""
        for child in evt.cpu_children:
            if child.name.startswith(MODULE_LABEL):
                yield child
            else:
                yield from inner_modules(child)

    def own_ms(evt) -> float:
        """The time of the operators ``evt`` runs itself: each child that is no module range counts
        whole (an aten op with what it calls), other ranges that hold module ranges are looked into.
        Time between operators (Python, the hooks) is no layer's: on CUDA it has no kernels anyway."""
        total = 0.0
        for child in evt.cpu_children:
            if child.name.startswith(MODULE_LABEL):
                continue
            total += own_ms(child) if next(inner_modules(child), None) is not None else span_ms(child)
        return total

    def iteration_of(evt) -> int | None:
        parent = evt.cpu_parent
        while parent is not None:
            if parent.name.startswith(ITER_LABEL):
                return int(parent.name[len(ITER_LABEL):])
            parent = parent.cpu_parent
        return None

    times: dict[str, list[float]] = {}
    for evt in sorted(function_events, key=lambda e: e.time_range.start):
        if not evt.name.startswith(MODULE_LABEL) or evt.device_type.name != "CPU":
            continue
        i = iteration_of(evt)
        if i is None or i >= iterations:
            continue
        name = evt.name[len(MODULE_LABEL):]
        times.setdefault(name, [0.0] * iterations)[i] += own_ms(evt)
    return tuple(
        LayerEvent(name=name or ROOT, op_type=classes.get(name, ""), times_ms=tuple(round(t, 6) for t in ts),
                   onnx_nodes=tuple(node_map.get(name, ())))
        for name, ts in times.items() if any(ts) or node_map.get(name))


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def merge_folded_norms(events, norms=None, convs=None) -> tuple[LayerEvent, ...]:
    """Give each BatchNorm module the exporter folded into a convolution to that convolution.

    Eager PyTorch runs BatchNorm as its own kernel, but the ONNX export folds it into the Conv that
    feeds it, so the norm module has no ONNX node and its time would map to nothing. The conv that
    feeds a norm is, in timm's blocks (conv -> bn [-> act]), the nearest earlier sibling module (same
    parent) in execution order; when that sibling is a convolution with ONNX nodes the two become one
    event, ``"<conv> + <norm>"``, with per-iteration times summed and the conv's ONNX nodes. A norm
    with ONNX nodes of its own (not folded) or without such a conv sibling is left as it is, as is
    every other event: the total time is unchanged.

    ``norms`` / ``convs``: module names of the normalisation / convolution modules (the profiler
    knows their classes); None: recognised by the event's class name (``op_type``)."""
    events = tuple(events)

    def is_norm(e) -> bool:
        return e.name in norms if norms is not None else "BatchNorm" in e.op_type

    def is_conv(e) -> bool:
        return e.name in convs if convs is not None else "Conv" in e.op_type

    folded: dict[int, list[int]] = {}          # conv event index -> norm event indices
    merged: set[int] = set()
    for i, event in enumerate(events):
        if event.onnx_nodes or event.name == ROOT or not is_norm(event):
            continue
        parent = _parent(event.name)
        j = next((j for j in range(i - 1, -1, -1) if events[j].onnx_nodes and events[j].name != ROOT
                  and _parent(events[j].name) == parent), None)
        if j is not None and is_conv(events[j]) and len(events[j].times_ms) == len(event.times_ms):
            folded.setdefault(j, []).append(i)
            merged.add(i)
    out = []
    for i, event in enumerate(events):
        if i in merged:
            continue
        parts = [event, *(events[k] for k in folded.get(i, ()))]
        if len(parts) > 1:
            event = LayerEvent(name=" + ".join(p.name for p in parts), op_type=" + ".join(p.op_type for p in parts),
                               times_ms=tuple(sum(ts) for ts in zip(*(p.times_ms for p in parts))),
                               onnx_nodes=event.onnx_nodes, opaque=event.opaque)
        out.append(event)
    return tuple(out)
