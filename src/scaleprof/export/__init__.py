"""export stage: scaled model -> checked ONNX file carrying its spec and predicted counts.

    from scaleprof.export import export_onnx, ExportOptions, read_metadata
    result = export_onnx(spec, "model.onnx", ExportOptions(precision="fp16"))
    read_metadata("model.onnx").spec        # the ModelSpec, from the file alone

    options        ExportOptions, their checks and defaults (PRECISIONS is scaleprof.core.onnx_file's)
    onnx_export    export_onnx: prepare the network, write the file, check parity, in that order
    cached         cached_export: one file per spec and precision, as the sweep and recommend name it
    recalibration  recalibrate_bn: BatchNorm statistics from seeded random images
    same_padding   TF "same" padding made constant for the export resolution
    writing        the torch exporter, scaleprof's metadata record, the ONNX checks
    passes         constant folding after the exporter; no dynamic Pad may remain
    parity         ONNX Runtime against PyTorch, at every shape the options ask for
    onnx_io        read_metadata and the metadata types (file reading is scaleprof.core.onnx_file's)

Importing this package does not import torch; export_onnx does, when first asked for. The
export record (``read_metadata(path).export``) keeps the weight ``seed`` and whether BatchNorm was
recalibrated (``recalibrated_bn``, at ``resolution``): ``build_model(spec, seed=seed)`` and, when it
was, ``recalibrate_bn(model, resolution, seed)`` rebuild the network the file holds.
"""

from scaleprof.core.onnx_file import PRECISIONS
from scaleprof.export.cached import cached_export, export_file_name
from scaleprof.export.onnx_io import (META_COUNTS, META_EXPORT, META_SPEC, OnnxMetadata, image_input, load_model,
                                      read_metadata)
from scaleprof.export.options import (DEFAULT_OPSET, DEFAULT_TOLERANCE, EXPORTERS, INPUT_NAME, OUTPUT_NAME,
                                      ExportOptions)
from scaleprof.export.parity import ParityCheck, ParityError
from scaleprof.export.recalibration import recalibrate_bn

_LAZY = {"export_onnx", "ExportResult"}


def __getattr__(name):  # export_onnx's module imports torch: only when asked for
    if name in _LAZY:
        from scaleprof.export import onnx_export

        return getattr(onnx_export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY | {"DEFAULT_OPSET", "DEFAULT_TOLERANCE", "EXPORTERS", "ExportOptions", "INPUT_NAME",
                          "META_COUNTS", "META_EXPORT", "META_SPEC", "OUTPUT_NAME", "OnnxMetadata", "PRECISIONS",
                          "ParityCheck", "ParityError", "image_input", "load_model", "read_metadata", "recalibrate_bn"})
