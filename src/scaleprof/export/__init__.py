"""export stage: scaled model -> checked ONNX file carrying its spec and predicted counts.

    from scaleprof.export import export_onnx, ExportOptions, read_metadata
    result = export_onnx(spec, "model.onnx", ExportOptions(precision="fp16"))
    read_metadata("model.onnx").spec        # the ModelSpec, from the file alone

Reading ONNX files (load_model, image_input, read_metadata) does not import torch.
"""

from scaleprof.export.onnx_io import (META_COUNTS, META_EXPORT, META_SPEC, OnnxMetadata, image_input, load_model,
                                      read_metadata)

_LAZY = {"export_onnx", "ExportOptions", "ExportResult", "ParityCheck", "ParityError", "DEFAULT_TOLERANCE",
         "INPUT_NAME", "OUTPUT_NAME"}


def __getattr__(name):  # export_onnx and friends import torch: only when asked for
    if name in _LAZY:
        from scaleprof.export import onnx_export

        return getattr(onnx_export, name)
    raise AttributeError(name)


__all__ = sorted(_LAZY | {"META_COUNTS", "META_EXPORT", "META_SPEC", "OnnxMetadata", "image_input", "load_model",
                          "read_metadata"})
