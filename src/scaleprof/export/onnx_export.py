"""Scaled model -> checked ONNX file: ``export_onnx`` puts the steps of this stage in order.

1. prepare the PyTorch network: build it (seeded) unless given, recalibrate BatchNorm when asked
   (recalibration), make TF "same" padding constant (same_padding), cast for fp16;
2. write the file (writing): run the exporter, fold constant sub-graphs (passes), stamp the
   metadata, check it with onnx.checker and shape inference;
3. check numerical parity against PyTorch in ONNX Runtime (parity).

The file is written under a temporary name and renamed into place only when every check passed.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scaleprof import __version__
from scaleprof.core.files import atomic_target
from scaleprof.core.limits import check_fits, inference_bytes
from scaleprof.core.onnx_file import QUANTIZED
from scaleprof.errors import BadInput, ScaleprofError
from scaleprof.export.calibration_images import load_images
from scaleprof.export.onnx_io import META_EXPORT, check_writable_target, set_metadata
from scaleprof.export.options import DEFAULT_OPSET, OUTPUT_NAME, ExportOptions, export_resolution, validate_options
from scaleprof.export.parity import ParityCheck, check_parity, parity_shapes, raise_on_failure
from scaleprof.export.passes import dynamic_pads, fold_constants
from scaleprof.export.quantize import in_batches, non_finite_scales, quantize_qdq, random_calibration
from scaleprof.export.recalibration import recalibrate_bn
from scaleprof.export.same_padding import freeze_same_padding
from scaleprof.export.writing import (
    check_file,
    export_record,
    io_shapes,
    opset_of,
    predicted_counts,
    run_exporter,
    stamp,
)
from scaleprof.models import FAMILIES, base_spec, build_model
from scaleprof.models.scaling import quick_counts
from scaleprof.models.spec import ModelSpec

# What callers import from this module (DEFAULT_OPSET and recalibrate_bn live beside it).
__all__ = ["DEFAULT_OPSET", "ExportOptions", "ExportResult", "export_onnx", "recalibrate_bn"]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    spec: ModelSpec
    options: ExportOptions
    input_shape: tuple                      # with symbols for dynamic dims
    output_shape: tuple
    parity: tuple[ParityCheck, ...]
    spatial_multiple: int                   # dynamic resolutions must keep this residue (same-padding models)
    folded_nodes: int                       # constant sub-graphs folded after export
    nodes: int
    seconds: dict = field(default_factory=dict)   # export, fold, check, parity, total
    size_bytes: int = 0
    opset: int | None = None                # the opset the file declares (dynamo may write a newer one)
    quantization: dict | None = None        # int8/fp8: the quantization settings kept in the file

    @property
    def max_abs(self) -> float:
        return max((p.max_abs for p in self.parity), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((p.max_rel for p in self.parity), default=0.0)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        data["spec"] = self.spec.to_dict()
        data["max_abs"], data["max_rel"] = self.max_abs, self.max_rel
        return data


@dataclass
class _Prepared:
    reference: object           # fp32 PyTorch: the parity reference for both precisions
    exported: object            # what the exporter traces (an fp16 copy for fp16)
    multiple: int               # dynamic resolutions must keep this residue (0: static export)
    seeded: bool                # the weights are build_model(spec, seed=options.seed)'s
    recalibrated: bool          # BatchNorm was given data statistics (asked for, or an fp8 export)
    outputs: list               # output names, in the order the network returns them


def export_onnx(spec: ModelSpec, path, options: ExportOptions | None = None, model=None, progress=None) -> ExportResult:
    """Export ``spec`` (built with scaleprof.models.build_model unless ``model`` is given) to ``path``.

    The file is written under a temporary name, checked, and renamed into place only when every
    check passed; on any failure nothing is left at ``path``."""
    import onnx

    options = options or ExportOptions()
    validate_options(options)
    say = progress or (lambda msg: None)
    path = check_writable_target(path)
    resolution = export_resolution(spec, options)
    _check_memory(spec, options, resolution)
    timings = {}
    t_all = time.perf_counter()
    images = _calibration_images(options, resolution)        # a bad image folder: refused before export work
    prepared = _prepare(spec, model, options, resolution)
    quantized = options.precision in QUANTIZED
    with atomic_target(path) as tmp, _scratch(quantized, path.parent) as scratch:
        float_path = Path(scratch) / "fp32.onnx" if quantized else tmp      # a QDQ file is made from it
        say(f"exporting {spec.label} (opset {options.opset}, {'fp32' if quantized else options.precision}, "
            f"{'dynamic' if options.dynamic else 'static'} shapes)")
        with _timed(timings, "export"):
            _trace(prepared.exported, float_path, options, resolution, prepared.outputs)
        with _timed(timings, "fold"):
            onnx_model, folded = _folded(float_path)
            record = export_record(onnx_model, options, resolution, prepared.multiple, prepared.recalibrated,
                                   prepared.seeded, prepared.outputs)
            stamp(onnx_model, spec, predicted_counts(prepared.reference, resolution), record)
            onnx.save(onnx_model, str(float_path))
        with _timed(timings, "check"):
            check_file(float_path)
        if quantized:
            say(f"quantizing to {options.precision} (QDQ) on {_calibration_source(options, sum(map(len, images)))}")
            with _timed(timings, "quantize"):
                onnx_model, record = _quantize(float_path, tmp, options, record, images)
        parity = ()
        if options.check_parity:
            with _timed(timings, "parity"):
                shapes = parity_shapes(options, resolution, prepared.multiple)
                say(f"parity vs PyTorch in ONNX Runtime at {', '.join(f'{b}x3x{r}x{r}' for b, r in shapes)}")
                parity = check_parity(prepared.reference, tmp, shapes, options, prepared.outputs)
            raise_on_failure(spec.label, parity, options)
            set_metadata(onnx_model, {META_EXPORT: dict(record, parity=[asdict(p) for p in parity])})
            onnx.save(onnx_model, str(tmp))
        in_shape, out_shape = io_shapes(onnx_model)
        size = tmp.stat().st_size
    timings["total"] = time.perf_counter() - t_all
    return ExportResult(path=path, spec=spec, options=options, input_shape=in_shape, output_shape=out_shape,
                        parity=tuple(parity), spatial_multiple=prepared.multiple, folded_nodes=folded,
                        nodes=len(onnx_model.graph.node), seconds=timings, size_bytes=size, opset=record["opset"],
                        quantization=record.get("quantization"))


def _check_memory(spec: ModelSpec, options: ExportOptions, resolution: int) -> None:
    """Refuse, before building anything, an export whose tensors this machine cannot hold: the weights
    three times (the PyTorch network, the file being written, ONNX Runtime's session for parity) and
    the activations of the largest input traced or checked, estimated from the spec's counts (a
    network given under a name scaleprof does not scale is not estimated). The counts are taken at
    the export resolution, which the network must take (a detector takes only multiples of its
    largest stride), and the activations scaled by area to the largest input."""
    shapes = parity_shapes(options, resolution, _family_facts(spec)[1]) if options.check_parity else []
    batch, largest = max(shapes + [(options.static_batch if not options.dynamic else 1, resolution)],
                         key=lambda shape: shape[0] * shape[1] ** 2)
    try:
        _, params, acts = quick_counts(spec, resolution)
    except BadInput:
        return
    acts = int(acts * (largest / resolution) ** 2)
    check_fits(inference_bytes(3 * params, acts, batch, largest),
               f"exporting {spec.label} at {batch}x3x{largest}x{largest}")


@contextlib.contextmanager
def _timed(timings: dict, step: str):
    start = time.perf_counter()
    yield
    timings[step] = time.perf_counter() - start


def _prepare(spec: ModelSpec, model, options: ExportOptions, resolution: int) -> _Prepared:
    """The network to export, on the CPU in eval mode; a given ``model`` is copied, never changed.

    The spatial multiple is the larger of what the frozen same-padding needs and what the family
    takes (EfficientDet: multiples of 128)."""
    import torch

    seeded = model is None
    if seeded:
        model = build_model(spec, "cpu", seed=options.seed)
    model = copy.deepcopy(model).float().eval()
    torch.manual_seed(options.seed)
    recalibrated = options.recalibrate_bn or options.precision == "fp8"    # why fp8: scaleprof.export.quantize
    if recalibrated:
        recalibrate_bn(model, resolution, options.seed)
    multiple = freeze_same_padding(model, resolution, verify=options.dynamic)
    outputs, family_multiple = _family_facts(spec)
    multiple = max(multiple, family_multiple)
    exported = copy.deepcopy(model).half() if options.precision == "fp16" else model
    return _Prepared(reference=model, exported=exported, multiple=multiple if options.dynamic else 0, seeded=seeded,
                     recalibrated=recalibrated, outputs=outputs)


def _scratch(needed: bool, where: Path):
    """A temporary folder beside the target for the fp32 file a QDQ file is made from (none needed
    otherwise)."""
    if not needed:
        return contextlib.nullcontext(None)
    return tempfile.TemporaryDirectory(prefix=".scaleprof-export-", dir=where)


def _calibration_images(options: ExportOptions, resolution: int) -> list:
    """The calibration inputs of an int8/fp8 export ([] for a float one): the folder's images, else
    seeded random ones."""
    if options.precision not in QUANTIZED:
        return []

    if options.calibration_images is not None:
        images = load_images(options.calibration_images, resolution, options.calibration_count)
    else:
        images = random_calibration(options.calibration_count, resolution, options.seed)
    return images if options.dynamic else in_batches(images, options.static_batch)


def _calibration_source(options: ExportOptions, count: int) -> str:
    if options.calibration_images is not None:
        return f"{count} image{'s' if count > 1 else ''} of {options.calibration_images}"
    return f"{count} seeded random N(0, 1) images (latency does not depend on the values)"


def _quantize(float_path: Path, tmp: Path, options: ExportOptions, record: dict, images: list):
    """The QDQ file written to ``tmp`` from the checked fp32 file, its export record naming the
    quantization; (the model, the record)."""
    import onnx


    settings = quantize_qdq(float_path, tmp, options.precision, record["input"], images, options.int8_activations)
    bad = non_finite_scales(tmp)
    if bad:
        raise ScaleprofError(f"{options.precision} calibration left {len(bad)} scale(s) that are not finite "
                             f"(first {bad[0]}): the calibration images give those tensors no spread", exit_code=1)
    settings["calibration"] = {"source": "images" if options.calibration_images else "random",
                               "folder": options.calibration_images, "images": sum(map(len, images)),
                               "resolution": images[0].shape[-1] if images else None}
    onnx_model = onnx.load(str(tmp))
    onnx_model.producer_name, onnx_model.producer_version = "scaleprof", __version__   # quantize_static renames it
    record = dict(record, opset=opset_of(onnx_model), quantization=settings)
    set_metadata(onnx_model, {META_EXPORT: record})
    onnx.save(onnx_model, str(tmp))
    check_file(tmp)
    return onnx_model, record


def _family_facts(spec: ModelSpec) -> tuple[list[str], int]:
    """(output names, resolution multiple) of the spec's family; a spec of no known family (a network
    given as is) has one output and takes any resolution."""
    family = FAMILIES.get(spec.family)
    if family is None:
        return [OUTPUT_NAME], 1
    return family.output_names(spec.arch or base_spec(spec.model).arch), family.resolution_multiple or 1


def _trace(model, tmp: Path, options: ExportOptions, resolution: int, outputs) -> None:
    import torch

    batch = options.static_batch if not options.dynamic else 1
    dtype = torch.float16 if options.precision == "fp16" else torch.float32
    run_exporter(model, torch.randn(batch, 3, resolution, resolution, dtype=dtype), tmp, options, outputs)


def _folded(tmp: Path):
    """(the exported ONNX model with its constant sub-graphs folded, nodes folded); a Pad whose pads
    are still computed is an error (TensorRT's parser cannot take it)."""
    import onnx

    onnx_model = onnx.load(str(tmp))
    folded = fold_constants(onnx_model)
    leftover = dynamic_pads(onnx_model)
    if leftover:
        raise ScaleprofError(f"export left Pad nodes with computed pads ({', '.join(leftover[:3])}): "
                             "TensorRT's ONNX parser cannot take them", exit_code=1)
    return onnx_model, folded
