"""ONNX counts against PyTorch counts: what export is known to change, per module, and what is left.

Export changes the counts in known ways, each explained per module and never absorbed otherwise:

- a BatchNorm folded into the conv before it loses its 2*C params (no ONNX node of its own), and
  the conv gains a bias (C_out params, C_out*H*W flops) unless it had one;
- a fixed (non-learnable) conv filter, such as timm's BlurPool, is a constant weight in ONNX, so
  its elements count as params there;
- other learnable scalars that feed no counted op are folded into constants (EfficientDet's BiFPN
  fusion weights: relu(w) / sum(w) becomes one constant per input);
- a module called more than once (EfficientDet's class/box nets run once per pyramid level with the
  same weights) is one ONNX node per call, each with its own copy of the weights (each folded with
  that level's BatchNorm), so ONNX counts its params once per call.

The TorchScript exporter names the k-th repeated call of a module's scope ``<name>_<k>``
(``/class_net/conv_rep.0/conv_pw_1/Conv``): such names are read as the module they call.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from scaleprof.core.counts import Counts

_BN_TYPES = ("BatchNorm", "BatchNormAct", "FrozenBatchNorm")
_WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_CALL_SUFFIX = re.compile(r"_\d+(?=\.|$)")


@dataclass(frozen=True)
class FoldedBias:
    module: str            # the conv/linear that gained a bias in export
    params: int            # C_out per call
    flops: int             # C_out * H_out * W_out per image, over all calls


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
    constants_folded: tuple[str, ...] = ()   # modules whose params became constants of uncounted ops
    constant_params_removed: int = 0
    per_call_weights: tuple[str, ...] = ()   # modules called more than once: ONNX copies their weights per call
    per_call_params_added: int = 0

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
                + (f" - {self.constant_params_removed:,} params of {len(self.constants_folded)} modules folded into "
                   "constants" if self.constants_folded else "")
                + (f" + {self.per_call_params_added:,} weight copies of {len(self.per_call_weights)} modules "
                   "called once per level" if self.per_call_weights else "")
                + f"), acts {d['acts']:+,}; unexplained {self.unexplained}")


def _summed(rows) -> dict:
    return {k: sum(getattr(r, k) for r in rows) for k in ("flops", "params", "acts")}


def _by_module(onnx_counts: Counts, modules: dict[str, str], known) -> tuple[dict, list]:
    """ONNX rows grouped by the PyTorch module they came from (repeated calls read as the module)."""
    by_module: dict[str, list] = {}
    unmapped = []
    for layer in onnx_counts.layers:
        module = modules.get(layer.name)
        if module is None:
            unmapped.append(layer.name)
            module = layer.name
        elif module not in known and _CALL_SUFFIX.sub("", module) in known:
            module = _CALL_SUFFIX.sub("", module)
        by_module.setdefault(module, []).append(layer)
    return by_module, unmapped


def _weighted_calls(row, nodes, o, t) -> tuple[FoldedBias | None, int] | None:
    """(bias the fold added or None, weight copies) when the module's ONNX nodes are its calls, each
    with the module's weights plus, when BatchNorm was folded into it, a bias; None otherwise."""
    convs = [n for n in nodes if n.type in _WEIGHTED_OPS]
    if not convs or len(convs) != len(nodes) or o["acts"] != t["acts"]:
        return None
    c_out = convs[0].output_shape[1] if len(convs[0].output_shape) > 1 else 0
    per_call = {n.params for n in convs}
    if not c_out or len(per_call) != 1 or not t["params"]:
        return None
    bias = per_call.pop() - t["params"]
    positions = sum(n.acts for n in convs) // c_out
    if bias not in (0, c_out) or o["flops"] - t["flops"] != bias * positions:
        return None
    folded = FoldedBias(row.name, bias * len(convs), bias * positions) if bias else None
    return folded, (len(convs) - 1) * t["params"]


def compare_counts(onnx_counts: Counts, torch_counts: Counts, modules: dict[str, str]) -> CountsComparison:
    """Explain ONNX-side counts from PyTorch-side counts, per module (see the module docstring).

    ``modules`` maps ONNX node names to PyTorch module names (``node_modules``). Whatever differs for
    no known reason is reported as unexplained, never absorbed."""
    torch_rows = {r.name: r for r in torch_counts.layers}
    by_module, unmapped = _by_module(onnx_counts, modules, torch_rows)
    bn_folded, bias_added, mismatches, constants, per_call = [], [], [], [], []
    bn_removed = filter_params = constant_params = copies = 0
    un = {"flops": 0, "params": 0, "acts": 0}
    for name, row in torch_rows.items():
        nodes = by_module.get(name, [])
        o, t = _summed(nodes), _summed([row])
        if o == t:
            continue
        if not nodes and row.params and not row.flops and not row.acts:
            if any(b in row.type for b in _BN_TYPES):
                bn_folded.append(name)
                bn_removed += row.params
            else:
                constants.append(name)
                constant_params += row.params
            continue
        calls = _weighted_calls(row, nodes, o, t)
        if calls is not None:
            folded, extra = calls
            if folded:
                bias_added.append(folded)
            if extra:
                per_call.append(name)
                copies += extra
            continue
        if len(nodes) == 1 and nodes[0].type in _WEIGHTED_OPS and t["params"] == 0 and o["flops"] == t["flops"] \
                and o["acts"] == t["acts"]:
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
        unmapped_nodes=tuple(unmapped), constants_folded=tuple(constants), constant_params_removed=constant_params,
        per_call_weights=tuple(per_call), per_call_params_added=copies)
