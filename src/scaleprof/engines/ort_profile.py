"""ONNX Runtime's layer profile: its Chrome-trace events as LayerEvents, and how the optimised
graph's node names map back onto the exported ONNX graph (``OrtEngine.layer_resolver``).

Names seen in real optimised models (CPU EP, ORT_ENABLE_ALL): NCHWc convolutions, pools and their
fused activations / residual adds are named ``<output tensor of the last fused node>_nchwc``;
element-wise fusions ``<last node>/<Kind>Fusion/`` (QuickGelu = x*sigmoid(x)); FusedConv keeps
the Conv's name; layout helpers are ``ReorderInput[_token_N]``, ``ReorderOutput[_token_N]``,
``Reshape_token_N``. The optimised model the engine saved says what each node reads, writes and
fuses, so fused members no name points at are still found.
"""

from __future__ import annotations

import bisect
import re

from scaleprof.engines.base import LayerEvent
from scaleprof.engines.anchors import LayerAnchors, LayerResolver, OnnxGraph


def parse_profile(events: list[dict], iterations: int) -> tuple[LayerEvent, ...]:
    """ORT's Chrome-trace events -> one LayerEvent per node, one time per ``model_run`` (the last
    ``iterations`` runs; earlier ones were warm-up). A node absent from a run counts 0 there."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[-iterations:]
    if not runs:
        return ()
    starts = [r["ts"] for r in runs]
    times: dict[str, list[float]] = {}
    op_types: dict[str, str] = {}
    for e in sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"]):
        name = e.get("name", "")
        if not name.endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if i < 0 or e["ts"] > runs[i]["ts"] + runs[i]["dur"]:
            continue                           # a warm-up run's node
        node = name[: -len("_kernel_time")]
        slot = times.setdefault(node, [0.0] * len(runs))
        slot[i] += e.get("dur", 0) / 1e3
        op_types.setdefault(node, (e.get("args") or {}).get("op_name", ""))
    return tuple(LayerEvent(name=n, op_type=op_types[n], times_ms=tuple(t)) for n, t in times.items())


class OrtResolver(LayerResolver):
    """ONNX Runtime's optimised graph (the file the engine manifest points to) against the export
    (names: see the module docstring). Without the optimised model, the generic rules plus the
    suffixes ORT adds to node names."""

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

    def resolve(self, event) -> LayerAnchors:
        res = super().resolve(event)
        opt = self.optimised
        if opt is not None and event.name in opt.nodes:
            res.produces = opt.outputs(event.name)
            res.consumes = [t for t in opt.inputs(event.name) if t not in opt.initializers]
            node = opt.nodes[event.name]
            if node.op_type in self.HELPERS:
                return LayerAnchors(produces=res.produces, consumes=res.consumes)   # layout copies
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


# --- the precision each optimised node runs in -----------------------------------------------

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_CONV_OPS = ("Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv")


def node_precision(node, float_precision: str) -> str:
    """'int8' for ONNX Runtime's integer kernels (QLinear*, QGemm, *Integer: a Q/DQ pair fused into
    the op), 'qdq' for a Quantize/DequantizeLinear left as its own kernel (a conversion), else the
    model's float type (a node the QDQ fusions did not take computes in float between a DQ and a Q)."""
    if node.op_type in QDQ_OPS:
        return "qdq"
    if node.op_type.startswith("QLinear") or node.op_type in ("QGemm", "QAttention") or "Integer" in node.op_type:
        return "int8"
    return float_precision


def layer_precisions(optimised, float_precision: str = "fp32") -> dict:
    """What ONNX Runtime's optimised graph (an onnx.ModelProto) runs in: nodes by precision, the
    convolutions by precision, and the nodes themselves (name, op type, precision)."""
    nodes = [(n.name, n.op_type, node_precision(n, float_precision)) for n in optimised.graph.node]

    def tally(rows) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, precision in rows:
            counts[precision] = counts.get(precision, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    return {"layer_precisions": tally(nodes),
            "conv_precisions": tally(r for r in nodes if r[1] in _CONV_OPS),
            "layers": [{"name": n, "op_type": op, "precision": p} for n, op, p in nodes]}
