"""An fp32 export made into a QDQ file with ONNX Runtime's static quantization (int8, or fp8 E4M3
for TensorRT-family backends).

``quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs around the float ops; engines fuse
each pair into the op (a convolution then reads and writes int8). The settings:

- QDQ format, per-channel weights, symmetric weights and activations (zero points of 0: what
  TensorRT's explicit quantization takes); an int8 export may ask for asymmetric uint8 activations
  instead (U8S8), for ONNX Runtime's CPU EP: on x86 it fuses every convolution, sigmoid and multiply
  of EfficientNet into integer kernels with uint8 activations, and far fewer with int8 ones;
- biases stay float (``QuantizeBias: False``): TensorRT-RTX's parser refuses an int32 bias
  ("DequantizeLinear: input has type Int32") and fuses a float bias into the int8 convolution;
- calibration: MinMax for int8; ONNX Runtime calibrates fp8 only with its Distribution method,
  which fits each tensor's spread. A tensor without spread has no fp8 scale (NaN), and freshly
  initialised BatchNorm leaves some (squeeze-excitation gates of a random network are constant),
  so an fp8 export recalibrates BatchNorm (scaleprof.export.recalibration) first.

Calibration images are seeded N(0, 1) noise unless the user gives a folder of images: latency does
not depend on the weights' or the scales' values, only on the types, so random calibration measures
the same engine; a folder of real images makes the file's outputs meaningful too (with trained
weights). Importing this module imports neither onnxruntime nor numpy.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

from scaleprof.core.text import first_line
from scaleprof.errors import ScaleprofError

TOOL = "onnxruntime.quantization.quantize_static"
_TYPES = {"int8": "QInt8", "fp8": "QFLOAT8E4M3FN"}
_METHODS = {"int8": "MinMax", "fp8": "Distribution"}


def random_calibration(count: int, resolution: int, seed: int) -> list:
    """``count`` seeded N(0, 1) images (1 x 3 x R x R, float32), one per calibration batch."""
    import numpy as np

    rng = np.random.default_rng(seed + 2)       # not the parity inputs' stream
    return [rng.standard_normal((1, 3, resolution, resolution), dtype=np.float32) for _ in range(count)]


def in_batches(images: list, batch: int) -> list:
    """1-image arrays regrouped into ``batch``-image arrays (a static export takes no other batch);
    the last batch is completed with the first images."""
    import numpy as np

    if batch == 1:
        return images
    count = -(-len(images) // batch) * batch
    cycled = [images[i % len(images)] for i in range(count)]
    return [np.concatenate(cycled[i:i + batch]) for i in range(0, count, batch)]


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over a list of input arrays."""

    def __init__(self, input_name: str, images: list):
        self.input_name, self.images, self.index = input_name, images, 0

    def get_next(self):
        if self.index >= len(self.images):
            return None
        self.index += 1
        return {self.input_name: self.images[self.index - 1]}

    def rewind(self):
        self.index = 0


def quantize_qdq(fp32_path: Path, out_path: Path, precision: str, input_name: str, images: list,
                 activations: str = "int8") -> dict:
    """Write the QDQ file for ``fp32_path`` at ``precision`` to ``out_path``, calibrated on
    ``images``; returns the quantization record kept in the file's metadata. ``activations``
    "uint8" (int8 only): asymmetric uint8 activations with int8 weights (U8S8)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static

    class Reader(_Reader, CalibrationDataReader):
        pass

    qtype = getattr(QuantType, _TYPES[precision])
    unsigned = precision == "int8" and activations == "uint8"
    extra = {"ActivationSymmetric": not unsigned, "WeightSymmetric": True, "QuantizeBias": False}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)            # quantize_static's advice to pre-process goes to the root logger
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):   # the calibrator prints
            warnings.simplefilter("ignore")
            quantize_static(str(fp32_path), str(out_path), Reader(input_name, images), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8 if unsigned else qtype,
                            weight_type=qtype,
                            calibrate_method=getattr(CalibrationMethod, _METHODS[precision]), extra_options=extra)
    except Exception as err:
        raise ScaleprofError(f"ONNX Runtime could not quantize to {precision}: {first_line(err, 300)}",
                             exit_code=1) from None
    finally:
        root.setLevel(level)
    return {"tool": TOOL, "format": "QDQ", "type": _TYPES[precision], "per_channel": True,
            "weights": "symmetric", "activations": "asymmetric uint8" if unsigned else "symmetric",
            "quantize_bias": False,
            "calibration_method": _METHODS[precision]}


def record_flavour(export_record: dict | None) -> str:
    """The flavour an export record says its file has: "uint8" or "int8" (its int8 activations) for
    an int8 file, "" for any other (scaleprof.engines.int8_flavour names the same values)."""
    record = export_record if isinstance(export_record, dict) else {}
    if record.get("precision") != "int8":
        return ""
    quantization = record.get("quantization") if isinstance(record.get("quantization"), dict) else {}
    return "uint8" if quantization.get("activations") == "asymmetric uint8" else "int8"


def non_finite_scales(path: Path) -> list[str]:
    """Names of the quantization scales in ``path`` that are not finite numbers."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    scales = {n.input[1] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")}
    return [i.name for i in model.graph.initializer
            if i.name in scales and not np.all(np.isfinite(numpy_helper.to_array(i)))]
