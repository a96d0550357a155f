"""TensorFlow "same" padding made constant, so no shape arithmetic reaches the ONNX file.

timm's TF ports (tf_efficientnet_*, ...) compute their pads from the input size at run time, which
exports as Shape/Ceil/Sub/Pad arithmetic that TensorRT's ONNX parser rejects. ``freeze_same_padding``
replaces those layers' dynamic padding by the constant pads they get at the export resolution.

Importing this module imports torch (the static-padding classes subclass torch modules).
"""

from __future__ import annotations

import math

import torch.nn as nn

from scaleprof.errors import ScaleprofError


def freeze_same_padding(model, resolution: int, verify: bool = True) -> int:
    """Give every dynamic same-padding layer of ``model`` the constant pads it gets at
    ``resolution``, in place. Module names are unchanged, so node scopes still map to the same modules.

    Returns the spatial multiple M: the constant pads are right for any resolution R' = R + k*M.
    A layer's pads depend on its input size x modulo its stride s, and x grows by s when R grows by
    the total stride up to and including the layer; M is the largest of those totals. Every family
    here downsamples by 1 or 2 at a time, so the total stride before a layer is the power of two just
    above R/x (exactly R/x only when R is a multiple of it: 232 px reaches the last stride-2 layer at 15 px,
    and 232/15 is no stride). With ``verify``, M is checked by a second probe at R + M."""
    layers = _same_pad_modules(model)
    if not layers:
        return 1
    sizes = _same_pad_inputs(model, layers, resolution)
    pads = _pads_at(layers, sizes)
    multiple = 1
    for name, module in layers:
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        before = 2 ** math.ceil(math.log2(resolution / sizes[name][0]) - 1e-9)
        multiple = max(multiple, before * stride)
    if verify and _pads_at(layers, _same_pad_inputs(model, layers, resolution + multiple)) != pads:
        raise ScaleprofError(f"same-padding pads at {resolution} px do not repeat at {resolution + multiple} px: "
                             "export this model with --static", exit_code=1)
    for name, module in layers:
        _make_static(module, pads[name])
    return multiple


def _same_pad_modules(model):
    """timm's dynamic "same"-padding layers (TF ports: tf_efficientnet_*, ...)."""
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame

    return [(n, m) for n, m in model.named_modules() if isinstance(m, (Conv2dSame, MaxPool2dSame, AvgPool2dSame))]


def _tf_same_pads(size: tuple[int, int], kernel, stride, dilation) -> tuple[int, int, int, int]:
    """F.pad order (left, right, top, bottom), as TensorFlow's SAME does for this input size."""
    def one(x, k, s, d):
        total = max((math.ceil(x / s) - 1) * s + (k - 1) * d + 1 - x, 0)
        return total // 2, total - total // 2

    k, s, d = (v if isinstance(v, (tuple, list)) else (v, v) for v in (kernel, stride, dilation))
    top, bottom = one(size[0], k[0], s[0], d[0])
    left, right = one(size[1], k[1], s[1], d[1])
    return (left, right, top, bottom)


def _same_pad_inputs(model, layers, resolution: int) -> dict:
    """{name: input (H, W)} of each same-padding layer for a 1x3xRxR input."""
    import torch

    sizes = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=n: sizes.__setitem__(name, tuple(args[0].shape[-2:])))
             for n, m in layers]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution, dtype=next(model.parameters()).dtype))
    finally:
        for h in hooks:
            h.remove()
    return sizes


def _pads_at(layers, sizes) -> dict:
    return {name: _tf_same_pads(sizes[name], m.kernel_size, m.stride, getattr(m, "dilation", 1)) for name, m in layers}


def _make_static(module, pads: tuple[int, int, int, int]) -> None:
    from timm.layers.conv2d_same import Conv2dSame

    if isinstance(module, Conv2dSame):
        module.__class__ = _StaticPadConv2d
    else:
        base = module.__class__.__mro__[1]   # nn.MaxPool2d / nn.AvgPool2d
        module.__class__ = type(f"StaticPad{base.__name__}", (_StaticPadPool, base), {})
        module._pad_value = -float("inf") if "Max" in base.__name__ else 0.0
    module._static_pads = pads


class _StaticPadConv2d(nn.Conv2d):
    """A Conv2dSame after freezing: constant pads, then an unpadded conv."""

    def forward(self, x):
        import torch.nn.functional as F

        x = F.pad(x, self._static_pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _StaticPadPool:
    """Mixed into a MaxPool2d/AvgPool2d after freezing: constant pads, then the pooling."""

    def forward(self, x):
        import torch.nn.functional as F

        return super().forward(F.pad(x, self._static_pads, value=self._pad_value))
