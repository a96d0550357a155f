"""export stage: scaled model -> checked ONNX file carrying its spec and predicted counts.

    from scaleprof.export import export_onnx, ExportOptions, read_metadata
    result = export_onnx(spec, "model.onnx", ExportOptions(precision="fp16"))
    read_metadata("model.onnx").spec        # the ModelSpec, from the file alone

Reading ONNX files (load_model, image_input, read_metadata) does not import torch. The export record
(``read_metadata(path).export``) keeps the weight ``seed`` and whether BatchNorm was recalibrated
(``recalibrated_bn``, at ``resolution``): ``build_model(spec, seed=seed)`` and, when it was,
``recalibrate_bn(model, resolution, seed)`` rebuild the network the file holds.
"""

from scaleprof.export.onnx_io import (META_COUNTS, META_EXPORT, META_SPEC, OnnxMetadata, image_input, load_model,
                                      read_metadata)

_LAZY = {"export_onnx", "ExportOptions", "ExportResult", "ParityCheck", "ParityError", "DEFAULT_TOLERANCE",
         "INPUT_NAME", "OUTPUT_NAME", "recalibrate_bn"}


def __getattr__(name):  # export_onnx and friends import torch: only when asked for
    if name in _LAZY:
        from scaleprof.export import onnx_export

        return getattr(onnx_export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY | {"META_COUNTS", "META_EXPORT", "META_SPEC", "OnnxMetadata", "image_input", "load_model",
                          "read_metadata"})
