"""What an export is asked for (ExportOptions) and the checks on it, before anything is built.

Importing this module imports neither torch nor onnx: the sweep configuration and the CLI read
these names cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaleprof.core.onnx_file import PRECISIONS, QUANTIZED
from scaleprof.errors import BadInput
from scaleprof.models import FAMILIES

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
# Parity tolerance: fail when max|onnx - torch| > atol + rtol * max|torch| (normalised by the output's
# scale: an element-wise relative error is meaningless for logits near zero).
# A QDQ file is compared with the fp32 network it came from: its rounding is the quantization's, so
# int8's bound is wide and fp8's (ONNX Runtime's fp8 scales fit a distribution, and the CPU emulates
# fp8) only catches a broken file (non-finite outputs, outputs of another magnitude).
DEFAULT_TOLERANCE = {"fp32": (1e-3, 1e-5), "fp16": (5e-2, 1e-3), "int8": (0.5, 0.0), "fp8": (2.0, 0.0)}
INT8_ACTIVATIONS = ("int8", "uint8")
CALIBRATION_IMAGES = 8                  # random calibration images, and the most taken from a folder
EXPORTERS = ("torchscript", "dynamo")


@dataclass(frozen=True)
class ExportOptions:
    opset: int = DEFAULT_OPSET
    precision: str = "fp32"                 # "fp32", "fp16" (TensorRT 11 is strongly typed), "int8" or "fp8" (QDQ)
    dynamic: bool = True                    # dynamic batch and spatial axes; False: static (batch, 3, R, R)
    static_batch: int = 1                   # the batch of a static export
    resolution: int | None = None           # the export (and static) resolution; None: spec.resolution
    rtol: float | None = None               # None: DEFAULT_TOLERANCE[precision]
    atol: float | None = None
    parity_batches: tuple[int, ...] = (1, 2)
    parity_resolutions: tuple[int, ...] | None = None   # None: (R, R + spatial multiple)
    check_parity: bool = True
    recalibrate_bn: bool = False            # give BN data statistics first (see recalibrate_bn())
    exporter: str = "torchscript"
    seed: int = 0                           # build_model's weight seed (and the parity inputs')
    calibration_images: str | None = None   # int8/fp8: a folder of images; None: seeded random images
    calibration_count: int = CALIBRATION_IMAGES
    int8_activations: str = "int8"          # int8: symmetric (TensorRT); uint8: asymmetric (ONNX Runtime's CPU kernels)

    def tolerance(self) -> tuple[float, float]:
        rtol, atol = DEFAULT_TOLERANCE[self.precision]
        return (self.rtol if self.rtol is not None else rtol, self.atol if self.atol is not None else atol)


def validate_options(options: ExportOptions) -> None:
    """BadInput, in one line, for options no export can satisfy."""
    import onnx

    if options.precision not in PRECISIONS:
        raise BadInput(f"unknown precision {options.precision!r}: choose {', '.join(PRECISIONS)}")
    if options.precision not in QUANTIZED and options.calibration_images is not None:
        raise BadInput(f"calibration images are for int8 and fp8 exports, not {options.precision}")
    if options.int8_activations not in INT8_ACTIVATIONS:
        raise BadInput(f"int8 activations {options.int8_activations!r}: choose {' or '.join(INT8_ACTIVATIONS)}")
    if options.int8_activations != "int8" and options.precision != "int8":
        raise BadInput(f"uint8 activations are an int8 export's choice, not {options.precision}'s")
    if isinstance(options.calibration_count, bool) or not isinstance(options.calibration_count, int) \
            or options.calibration_count < 1:
        raise BadInput(f"calibration image count must be a positive integer, got {options.calibration_count!r}")
    if options.exporter not in EXPORTERS:
        raise BadInput(f"unknown exporter {options.exporter!r}: choose {' or '.join(EXPORTERS)}")
    newest = onnx.defs.onnx_opset_version()
    if not 13 <= options.opset <= newest:
        raise BadInput(f"opset {options.opset} is not supported: choose 13..{newest}")
    for name in ("rtol", "atol"):
        value = getattr(options, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise BadInput(f"tolerance {name} must be a finite number >= 0, got {value}")
    if any(b < 1 for b in options.parity_batches) or options.static_batch < 1:
        raise BadInput("batch sizes must be >= 1")


def export_resolution(spec, options: ExportOptions) -> int:
    """The resolution the export traces and checks at: the options' or else the spec's; one the spec's
    family takes (EfficientDet: multiples of 128)."""
    resolution = options.resolution or spec.resolution
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise BadInput(f"export resolution must be a positive integer, got {resolution!r}")
    if spec.family in FAMILIES:
        FAMILIES[spec.family].check_resolution(spec.model, resolution)
    return resolution
