"""What a torch layer costs: flops, params and activations from shapes alone (pycls conventions).

The rules, written once for every stage that counts (docs/conventions.md#counting, pycls ``complexity``):

- Conv: k_h * k_w * (C_in / groups) * C_out * H_out * W_out (+ C_out * H_out * W_out with a bias);
  acts = output elements.
- Linear: C_in * C_out (+ C_out with bias) per location; acts = output elements.
- Max pooling: acts = output elements, no flops.
- timm's BlurPool2d (anti-aliasing in TResNet) is a depthwise conv with a fixed filter: conv flops
  and acts, no params (its filter is a buffer, not learnable).
- params: every learnable scalar (BatchNorm: weight and bias = 2 * C), attributed to the module
  that owns it directly.
- Everything else (BN, activations, adds, SE gating multiplies, average pooling) adds 0.

``per_position_cost`` reads a layer's cost per output position from its attributes alone (what the
flops search of scaleprof.models multiplies by positions); ``count_model`` runs a network once on a
``meta`` tensor (no memory, no arithmetic), records each module's output shape with forward hooks
and applies the same rules per call. Per-layer rows sum exactly to the totals; counts are per
image, and ``Counts.batch`` records the batch the shapes were propagated with.

Importing this module imports torch.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from scaleprof.core.counts import Counts, LayerCount
from scaleprof.core.layer_count import tally

MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
             nn.AdaptiveMaxPool3d)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Leaves that never get a row of their own (they compute nothing and own no params).
NO_ROW = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout3d)


def is_blur_pool(module: nn.Module) -> bool:
    """timm's anti-aliasing BlurPool2d (TResNet): a depthwise conv with a fixed (buffer) filter,
    run through F.conv2d. It is a conv, so it counts flops and acts; its filter is not learnable,
    so it adds no params."""
    return type(module).__name__ == "BlurPool2d" and hasattr(module, "filt_size") and hasattr(module, "filt")


def direct_params(module: nn.Module) -> int:
    """Learnable scalars ``module`` owns itself (not its children's)."""
    return sum(p.numel() for p in module.parameters(recurse=False) if p is not None)


def per_position_cost(module: nn.Module, channels: int | None = None) -> tuple[int, int, int | None]:
    """(flops, acts) per output position of ``module`` and its output channels, from its
    attributes alone; ``channels`` is the width flowing into it (for max pooling and blur pooling,
    which keep it). flops(call) = flops per position x output positions."""
    if isinstance(module, CONVS):
        flops = math.prod(module.kernel_size) * (module.in_channels // module.groups) * module.out_channels
        return flops + (module.out_channels if module.bias is not None else 0), module.out_channels, \
            module.out_channels
    if isinstance(module, nn.Linear):
        flops = module.in_features * module.out_features
        return flops + (module.out_features if module.bias is not None else 0), module.out_features, \
            module.out_features
    if isinstance(module, MAX_POOLS):
        return 0, channels or 0, None
    if is_blur_pool(module):
        c = module.channels or channels or 0
        return module.filt_size ** 2 * c, c, None      # k*k*(C/C)*C per position, no bias
    return 0, 0, getattr(module, "num_features", None) if isinstance(module, nn.modules.batchnorm._NormBase) \
        else None


def call_cost(module: nn.Module, out_shape: tuple[int, ...], batch: int) -> tuple[int, int]:
    """(flops, acts) per image of one call of ``module`` producing ``out_shape`` (N, C, ...)."""
    per_image = math.prod(out_shape) // max(batch, 1) if out_shape else 0
    if isinstance(module, MAX_POOLS):
        return 0, per_image
    if isinstance(module, (CONVS, nn.Linear)) or (is_blur_pool(module) and len(out_shape) == 4):
        channels = out_shape[1] if len(out_shape) > 1 else None
        flops_per_position, acts_per_position, _ = per_position_cost(module, channels)
        return flops_per_position * (per_image // acts_per_position), per_image
    return 0, 0


class _ShapeOnly(TorchFunctionMode):
    """On meta tensors, shape-preserving elementwise ops (normalisation, activations, dropout) are
    answered with their input: they add nothing to the counts, and torch's meta implementations
    of them (reference decompositions) cost most of a shape-propagation pass. The names of all the
    functions called (a module's own calls included) are kept in ``ops``, for the layer count."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    _SAME_SHAPE = {"batch_norm", "relu", "relu_", "silu", "silu_", "hardswish", "hardsigmoid", "gelu",
                   "leaky_relu", "leaky_relu_", "relu6", "hardtanh", "hardtanh_", "dropout", "sigmoid",
                   "sigmoid_", "mish", "tanh", "tanh_", "elu", "elu_", "selu"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops.append(getattr(func, "__name__", ""))
        if getattr(func, "__name__", "") in self._SAME_SHAPE:
            first = args[0] if args else kwargs.get("input")
            if isinstance(first, torch.Tensor) and first.is_meta:
                return first
        return func(*args, **kwargs)


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (list, tuple)) else ()
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def count_model(model: nn.Module, resolution: int | tuple[int, int] = 224, batch: int = 1,
                in_chans: int = 3) -> Counts:
    """Counts of ``model`` for a ``batch`` x in_chans x H x W input (shapes only, nothing computed).

    A model on the meta device is counted as is; a model on a real device is counted through a
    meta copy of it (its weights are neither copied nor touched).
    """
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    meta_model = _as_meta(model)
    calls, ops = _record_calls(meta_model, torch.empty(batch, in_chans, h, w, device="meta"), batch)
    modules = dict(meta_model.named_modules())
    position = {name: i for i, name in enumerate(modules)}
    layers = []
    for name in sorted(calls, key=lambda n: position.get(n, len(position))):  # module order, not call order
        shape, flops, acts = calls[name]
        layers.append(_row(name, modules[name], shape, flops, acts))
    for name, module in modules.items():  # parameters of modules the forward never called
        if name not in calls and direct_params(module):
            layers.append(_row(name, module, (), 0, 0))
    return Counts.from_layers(layers, h, w, batch, layer_kinds=tally(ops))


def _row(name: str, module: nn.Module, shape: tuple, flops: int, acts: int) -> LayerCount:
    return LayerCount(name=name, type=type(module).__name__, output_shape=shape, flops=int(flops),
                      params=direct_params(module), acts=int(acts))


def _record_calls(meta_model: nn.Module, example: torch.Tensor, batch: int) -> tuple[dict[str, list], list[str]]:
    """{module name: [output shape, flops, acts]} of one forward pass, in call order (a module
    called more than once adds each call), and the names of the torch functions it called."""
    names = {id(m): n for n, m in meta_model.named_modules()}
    calls: dict[str, list] = {}

    def hook(module, _inputs, output):
        name = names.get(id(module), "")
        out = _first_tensor(output)
        shape = tuple(int(x) for x in out.shape) if out is not None else ()
        flops, acts = call_cost(module, shape, batch)
        if name in calls:
            calls[name][1] += flops
            calls[name][2] += acts
        else:
            calls[name] = [shape, flops, acts]

    handles = []
    for module in meta_model.modules():
        is_leaf = next(iter(module.children()), None) is None
        if (is_leaf and not isinstance(module, NO_ROW)) or direct_params(module):
            handles.append(module.register_forward_hook(hook))
    walk = _ShapeOnly()
    try:
        with torch.no_grad(), walk:
            meta_model(example)
    finally:
        for handle in handles:
            handle.remove()
    return calls, walk.ops


def _as_meta(model: nn.Module) -> nn.Module:
    """``model`` itself when it lives on the meta device, else a meta copy (weights not copied)."""
    tensors = list(model.parameters()) + list(model.buffers())
    if all(t.device.type == "meta" for t in tensors):
        return model
    memo = {id(t): torch.empty_like(t, device="meta") if not isinstance(t, nn.Parameter)
            else nn.Parameter(torch.empty_like(t, device="meta"), requires_grad=t.requires_grad)
            for t in tensors}
    return copy.deepcopy(model, memo)
