"""Which int8 file a target gets: the activation type ("flavour") of an int8 export, chosen by the
backend that builds it. ``INT8_ACTIVATIONS`` is the rule (docs/precision.md, "int8 flavour per
backend", gives it as a table with the reasons): ONNX Runtime on the CPU gets asymmetric uint8
activations (U8S8: its x86 kernels fuse every convolution of EfficientNet then, a third with int8
ones); every other backend symmetric int8 (TensorRT's explicit quantization takes only that).
Weights are symmetric int8 per channel in every flavour; other precisions have no flavour ("").
The sweep exports one file per network, precision and flavour, and a point's key holds its flavour.
"""

from __future__ import annotations

DEFAULT_ACTIVATIONS = "int8"
INT8_ACTIVATIONS = {("ort", "cpu"): "uint8"}    # (backend, device) -> activation type; the rest: int8


def int8_activations(backend: str, device: str = "cpu") -> str:
    """The activation type of the int8 file a ``backend`` on ``device`` is measured with."""
    kind = device.split(":")[0]
    return INT8_ACTIVATIONS.get((backend, kind), DEFAULT_ACTIVATIONS)


def flavour_of(precision: str, backend: str, device: str = "cpu") -> str:
    """The flavour of a point: its int8 activation type for int8, "" for any other precision."""
    return int8_activations(backend, device) if precision == "int8" else ""


def precision_label(precision: str, flavour: str | None) -> str:
    """How a report names a precision with its flavour: "int8(act=uint8)" (no spaces: report group
    names hold it); a point stored before flavours were recorded (None) reads as its bare precision."""
    return f"{precision}(act={flavour})" if flavour else precision
