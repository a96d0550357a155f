"""Which int8 file a target gets: the activation type ("flavour") of an int8 export, chosen by the
backend that builds it. This table is the one place the rule lives; the sweep exports one file per
network, precision and flavour, and stores the flavour with each point.

| backend      | device | int8 activations | why                                                        |
|--------------|--------|------------------|------------------------------------------------------------|
| ort          | cpu    | uint8 (U8S8)     | the x86 CPU EP fuses every conv of EfficientNet into       |
|              |        |                  | QLinearConv with uint8 activations, a third with int8 ones |
| ort          | cuda   | int8             | symmetric, as TensorRT-style GPU kernels take them         |
| tensorrt     | any    | int8             | explicit quantization takes symmetric int8 only            |
| tensorrt-rtx | any    | int8             | likewise (its parser refuses uint8 activations)            |
| torch        | any    | (no int8 engines)|                                                            |

Weights are symmetric int8 per channel in every flavour. Other precisions have no flavour ("").
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
