"""Counting flops, params and activations of a torch model from shapes alone (pycls conventions).

The model runs once on a ``meta`` tensor (no memory, no arithmetic): forward hooks record each
module's output shape, and the counts follow from the shapes and the module's attributes
(SCALING.md §2, pycls ``complexity``):

- Conv: k_h * k_w * (C_in / groups) * C_out * H_out * W_out (+ C_out * H_out * W_out with a bias);
  acts = output elements.
- Linear: C_in * C_out (+ C_out with bias) per location; acts = output elements.
- Max pooling: acts = output elements, no flops.
- timm's BlurPool2d (anti-aliasing in TResNet) is a depthwise conv with a fixed filter: conv flops
  and acts, no params (its filter is a buffer, not learnable).
- params: every learnable scalar (BatchNorm: weight and bias = 2 * C), attributed to the module
  that owns it directly.
- Everything else (BN, activations, adds, SE gating multiplies, average pooling) adds 0.

Per-layer rows sum exactly to the totals. Counts are per image; ``Counts.batch`` records the batch
the shapes were propagated with.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from scaleprof.complexity.types import Counts, LayerCount

_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
            nn.AdaptiveMaxPool3d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_SKIP_ROWS = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout3d)


class _ShapeOnly(TorchFunctionMode):
    """On meta tensors, shape-preserving elementwise ops (normalisation, activations, dropout) are
    answered with their input: they add nothing to the counts, and torch's meta implementations
    of them (reference decompositions) cost most of a shape-propagation pass."""

    _SAME_SHAPE = {"batch_norm", "relu", "relu_", "silu", "silu_", "hardswish", "hardsigmoid", "gelu",
                   "leaky_relu", "leaky_relu_", "relu6", "hardtanh", "hardtanh_", "dropout", "sigmoid",
                   "sigmoid_", "mish", "tanh", "tanh_", "elu", "elu_", "selu"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in self._SAME_SHAPE:
            first = args[0] if args else kwargs.get("input")
            if isinstance(first, torch.Tensor) and first.is_meta:
                return first
        return func(*args, **kwargs)


def _is_blur_pool(module: nn.Module) -> bool:
    """timm's anti-aliasing BlurPool2d (TResNet): a depthwise conv with a fixed (buffer) filter,
    run through F.conv2d. It is a conv, so it counts flops and acts; its filter is not learnable,
    so it adds no params."""
    return type(module).__name__ == "BlurPool2d" and hasattr(module, "filt_size") and hasattr(module, "filt")


def _direct_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False) if p is not None)


def _layer_counts(module: nn.Module, out_shape: tuple[int, ...], batch: int) -> tuple[int, int]:
    """(flops, acts) per image of one call of ``module`` producing ``out_shape``."""
    per_image = math.prod(out_shape) // max(batch, 1) if out_shape else 0
    if isinstance(module, (_CONV, nn.Linear)):
        flops_per_position, c_out, _ = per_position_cost(module)
        return flops_per_position * (per_image // c_out), per_image
    if isinstance(module, _MAXPOOL):
        return 0, per_image
    if _is_blur_pool(module) and len(out_shape) == 4:
        return module.filt_size ** 2 * per_image, per_image  # k*k*(C/C)*C per position, no bias
    return 0, 0


def per_position_cost(module: nn.Module, channels: int | None = None) -> tuple[int, int, int | None]:
    """(flops, acts) per output position of ``module`` and its output channels, from its
    attributes alone; ``channels`` is the width flowing into it (for max pooling, which keeps it).
    Same rules as ``_layer_counts``: flops(output) = flops per position x positions."""
    if isinstance(module, _CONV):
        flops = math.prod(module.kernel_size) * (module.in_channels // module.groups) * module.out_channels
        return flops + (module.out_channels if module.bias is not None else 0), module.out_channels, \
            module.out_channels
    if isinstance(module, nn.Linear):
        flops = module.in_features * module.out_features
        return flops + (module.out_features if module.bias is not None else 0), module.out_features, \
            module.out_features
    if isinstance(module, _MAXPOOL):
        return 0, channels or 0, None
    if _is_blur_pool(module):
        c = module.channels or channels or 0
        return module.filt_size ** 2 * c, c, None
    return 0, 0, getattr(module, "num_features", None) if isinstance(module, nn.modules.batchnorm._NormBase) \
        else None


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (list, tuple)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(output, dict):
        for item in output.values():
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
    names = {id(m): n for n, m in meta_model.named_modules()}
    rows: dict[str, list] = {}
    order: list[str] = []

    def hook(module, _inputs, output):
        name = names.get(id(module), "")
        out = _first_tensor(output)
        shape = tuple(int(x) for x in out.shape) if out is not None else ()
        flops, acts = _layer_counts(module, shape, batch)
        if name in rows:  # a module called more than once: add each call
            rows[name][1] += flops
            rows[name][2] += acts
            return
        rows[name] = [shape, flops, acts]
        order.append(name)

    handles = []
    for name, module in meta_model.named_modules():
        is_leaf = next(iter(module.children()), None) is None
        if (is_leaf and not isinstance(module, _SKIP_ROWS)) or _direct_params(module):
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), _ShapeOnly():
            meta_model(torch.empty(batch, in_chans, h, w, device="meta"))
    finally:
        for handle in handles:
            handle.remove()

    modules = dict(meta_model.named_modules())
    position = {name: i for i, name in enumerate(modules)}
    layers = []
    for name in sorted(order, key=lambda n: position.get(n, len(position))):  # module order, not call order
        shape, flops, acts = rows[name]
        module = modules[name]
        layers.append(LayerCount(name=name, type=type(module).__name__, output_shape=shape,
                                 flops=int(flops), params=_direct_params(module), acts=int(acts)))
    seen = set(order)
    for name, module in meta_model.named_modules():  # parameters of modules the forward never called
        if name not in seen and _direct_params(module):
            layers.append(LayerCount(name=name, type=type(module).__name__, output_shape=(),
                                     flops=0, params=_direct_params(module), acts=0))
    return Counts.from_layers(layers, h, w, batch)


def _as_meta(model: nn.Module) -> nn.Module:
    """``model`` itself when it lives on the meta device, else a meta copy (weights not copied)."""
    tensors = list(model.parameters()) + list(model.buffers())
    if all(t.device.type == "meta" for t in tensors):
        return model
    import copy

    memo = {id(t): torch.empty_like(t, device="meta") if not isinstance(t, nn.Parameter)
            else nn.Parameter(torch.empty_like(t, device="meta"), requires_grad=t.requires_grad)
            for t in tensors}
    return copy.deepcopy(model, memo)


def count_spec(spec, resolution: int | None = None, batch: int = 1) -> Counts:
    """Counts of the network a ModelSpec (or base model name) describes, at its resolution or
    ``resolution``. Built on the meta device: a few tens of milliseconds per configuration."""
    from scaleprof.core.text import first_line
    from scaleprof.errors import BadInput
    from scaleprof.models import base_spec, build_model

    if isinstance(spec, str):
        spec = base_spec(spec)
    resolution = spec.resolution if resolution is None else resolution
    check_resolution(resolution, spec.model)
    if not isinstance(batch, int) or batch < 1:
        raise BadInput(f"batch must be a positive integer, got {batch}")
    model = build_model(spec, device="meta")
    try:
        return count_model(model, resolution, batch=batch)
    except (RuntimeError, ValueError) as err:  # shape errors: the network cannot take this input
        raise BadInput(f"{spec.model} cannot take resolution {resolution}: {first_line(err)}") from None


MIN_RESOLUTION = 32      # every family here downsamples by 32
MAX_RESOLUTION = 4096


def check_resolution(resolution, model: str = "the model") -> None:
    """BadInput unless ``resolution`` is an integer the networks can take (32..4096)."""
    from scaleprof.errors import BadInput

    if isinstance(resolution, bool) or not isinstance(resolution, int) or \
            not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise BadInput(f"resolution {resolution!r} is not one {model} can take: give an integer from "
                       f"{MIN_RESOLUTION} (the network's total stride) to {MAX_RESOLUTION}")
