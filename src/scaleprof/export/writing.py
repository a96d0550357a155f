"""Writing the file: run the torch exporter, stamp scaleprof's metadata, and check the result.

Exporter choice (measured with torch 2.14.1, timm 1.0.31, efficientnet_b0 at 128 px on 2 CPU cores):
the TorchScript exporter (``dynamo=False``) takes ~1.3 s and names every node by its module scope
(``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``), always folding BatchNorm into a conv *with* bias.
The torch.export-based exporter (``dynamo=True``, onnxscript) takes ~12 s, names nodes
``node_Conv_781`` (the scope survives only in node metadata) and its optimiser drops a folded
bias whose values happen to be zero, so its counts would depend on weight values. TorchScript is
the default; ``exporter="dynamo"`` remains selectable. It writes at least opset 18 whatever it is
asked for: the export record keeps the opset the file declares.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

from scaleprof import __version__
from scaleprof.core.onnx_file import META_COUNTS, META_EXPORT, META_SPEC, META_VERSION, dims_of, graph_inputs
from scaleprof.core.text import first_line
from scaleprof.errors import ScaleprofError
from scaleprof.export.onnx_io import set_metadata
from scaleprof.export.options import INPUT_NAME, OUTPUT_NAME, ExportOptions
from scaleprof.models.spec import ModelSpec


def run_exporter(model, example, path: Path, options: ExportOptions, outputs=(OUTPUT_NAME,)) -> None:
    """``model`` traced with ``example`` into the ONNX file ``path`` by the exporter the options name,
    its outputs named ``outputs`` (a detector has one per head and pyramid level), each with a dynamic
    batch when the export is dynamic; the exporter's own failure is one ScaleprofError line."""
    import torch

    outputs = list(outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the TorchScript exporter's deprecation notice, tracer warnings
        try:
            if options.exporter == "torchscript":
                axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, **{name: {0: "batch"} for name in outputs}}
                torch.onnx.export(
                    model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME], output_names=outputs,
                    opset_version=options.opset, do_constant_folding=True,
                    dynamic_axes=axes if options.dynamic else None)
            else:
                _dynamo_export(model, example, path, options, outputs)
        except ScaleprofError:
            raise
        except Exception as err:
            raise ScaleprofError(f"the {options.exporter} ONNX exporter failed: {first_line(err, 300)}", exit_code=1)


def _dynamo_export(model, example, path: Path, options: ExportOptions, outputs: list[str]) -> None:
    import torch
    from torch.export import Dim

    shapes = None
    if options.dynamic:
        shapes = ({0: Dim("batch", min=1, max=4096), 2: Dim("height", min=16, max=4096),
                   3: Dim("width", min=16, max=4096)},)
    program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT_NAME],
                                output_names=outputs, opset_version=options.opset,
                                dynamic_shapes=shapes, verbose=False)
    program.save(str(path))


def opset_of(onnx_model) -> int | None:
    """The default-domain opset the file declares."""
    return next((o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")), None)


def export_record(onnx_model, options: ExportOptions, resolution: int, multiple: int, recalibrated: bool,
                  seeded: bool, outputs=(OUTPUT_NAME,)) -> dict:
    """How the file was made (read back as ``read_metadata(path).export``); ``outputs`` only when the
    network has more than one."""
    record = {
        "opset": opset_of(onnx_model), "precision": options.precision, "dynamic": options.dynamic,
        "static_batch": None if options.dynamic else options.static_batch, "resolution": resolution,
        "spatial_multiple": multiple, "exporter": options.exporter, "recalibrated_bn": recalibrated,
        "seed": options.seed, "weights": "seeded" if seeded else "given",
        "input": INPUT_NAME, "output": outputs[0],
        "versions": _versions(), "tolerance": dict(zip(("rtol", "atol"), options.tolerance())),
    }
    return dict(record, outputs=list(outputs)) if len(outputs) > 1 else record


def stamp(onnx_model, spec: ModelSpec, counts: dict, record: dict) -> None:
    """scaleprof's metadata (spec, predicted counts, export record, version) and producer, in place."""
    set_metadata(onnx_model, {META_SPEC: spec.to_json(), META_COUNTS: counts, META_EXPORT: record,
                              META_VERSION: __version__})
    onnx_model.producer_name = "scaleprof"
    onnx_model.producer_version = __version__
    onnx_model.doc_string = f"{spec.label} exported by scaleprof {__version__}"


def predicted_counts(model, resolution: int) -> dict:
    """PyTorch-side counts for the metadata (per image at the export resolution)."""
    from scaleprof.core.costs import count_model

    counts = count_model(model, resolution)
    return {"flops": counts.flops, "params": counts.params, "acts": counts.acts, "resolution": resolution,
            "convention": counts.convention, "source": "pytorch"}


def _versions() -> dict:
    import onnx
    import onnxruntime
    import timm
    import torch

    return {"scaleprof": __version__, "torch": torch.__version__, "timm": timm.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


def check_file(path: Path) -> None:
    """onnx.checker (full check) and strict shape inference, or one ScaleprofError line."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
        onnx.shape_inference.infer_shapes_path(str(path), str(path) + ".inferred", strict_mode=True)
    except Exception as err:
        raise ScaleprofError(f"exported model fails the ONNX checker: {first_line(err, 300)}", exit_code=1)
    finally:
        Path(str(path) + ".inferred").unlink(missing_ok=True)


def io_shapes(onnx_model) -> tuple[tuple, tuple]:
    """(input dims, output dims), with symbols for dynamic dims."""
    return dims_of(graph_inputs(onnx_model)[0]), dims_of(onnx_model.graph.output[0])
