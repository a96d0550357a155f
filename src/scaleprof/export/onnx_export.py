"""Scaled model -> checked ONNX file.

Exporter choice (measured with torch 2.14.1, timm 1.0.31, efficientnet_b0 at 128 px on 2 CPU cores):
the TorchScript exporter (``dynamo=False``) takes ~1.3 s and names every node by its module scope
(``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``), always folding BatchNorm into a conv *with* bias.
The torch.export-based exporter (``dynamo=True``, onnxscript) takes ~12 s, names nodes
``node_Conv_781`` (the scope survives only in node metadata) and its optimiser drops a folded
bias whose values happen to be zero, so its counts would depend on weight values. TorchScript is
the default; ``exporter="dynamo"`` remains selectable.

Every export is checked before it is renamed into place: onnx.checker (full check), shape
inference, no dynamic Pad, and numerical parity against PyTorch in ONNX Runtime (CPU).
"""

from __future__ import annotations

import copy
import math
import platform
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch.nn as _nn  # the static-padding classes below subclass torch modules

from scaleprof import __version__
from scaleprof.core.files import atomic_target
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput, ScaleprofError
from scaleprof.export.onnx_io import (META_COUNTS, META_EXPORT, META_SPEC, META_VERSION, check_writable_target, set_metadata)
from scaleprof.export.passes import dynamic_pads, fold_constants
from scaleprof.models.spec import ModelSpec

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
# Parity tolerance: fail when max|onnx - torch| > atol + rtol * max|torch| (normalised by the output's
# scale: an element-wise relative error is meaningless for logits near zero).
DEFAULT_TOLERANCE = {"fp32": (1e-3, 1e-5), "fp16": (5e-2, 1e-3)}   # precision -> (rtol, atol)
PRECISIONS = ("fp32", "fp16")
EXPORTERS = ("torchscript", "dynamo")


class ParityError(ScaleprofError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


@dataclass(frozen=True)
class ExportOptions:
    opset: int = DEFAULT_OPSET
    precision: str = "fp32"                 # "fp32" or "fp16" (weights and activations; TensorRT 11 is strongly typed)
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

    def tolerance(self) -> tuple[float, float]:
        rtol, atol = DEFAULT_TOLERANCE[self.precision]
        return (self.rtol if self.rtol is not None else rtol, self.atol if self.atol is not None else atol)


@dataclass(frozen=True)
class ParityCheck:
    batch: int
    resolution: int
    max_abs: float          # max |onnx - torch|
    max_rel: float          # max_abs / max |torch|
    ref_scale: float        # max |torch|
    ok: bool


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


# --------------------------------------------------------------------------------------------
# Preparing the PyTorch model

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


def _freeze_same_padding(model, resolution: int, verify: bool = True) -> int:
    """Replace dynamic same-padding (pads computed from the input shape at run time, which exports as
    Shape/Ceil/Sub/Pad arithmetic that TensorRT's ONNX parser rejects) by the constant pads those layers
    get at ``resolution``. Module names are unchanged, so node scopes still map to the same modules.

    Returns the spatial multiple M: the constant pads are right for any resolution R' = R + k*M.
    A layer's pads depend on its input size x modulo its stride s, and x grows by s when R grows by
    the total stride up to and including the layer; M is the largest of those totals. Every family
    here downsamples by 1 or 2 at a time, so the total stride before a layer is the power of two just
    above R/x (exactly R/x only when R is a multiple of it: 232 px reaches the last stride-2 layer at 15 px,
    and 232/15 is no stride). With ``verify``, M is checked by a second probe at R + M."""
    from timm.layers.conv2d_same import Conv2dSame

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
        if isinstance(module, Conv2dSame):
            module.__class__ = _StaticPadConv2d
        else:
            base = module.__class__.__mro__[1]   # nn.MaxPool2d / nn.AvgPool2d
            module.__class__ = type(f"StaticPad{base.__name__}", (_StaticPadPool, base), {})
            module._pad_value = -float("inf") if "Max" in base.__name__ else 0.0
        module._static_pads = pads[name]
    return multiple


class _StaticPadConv2d(_nn.Conv2d):
    def forward(self, x):
        import torch.nn.functional as F

        x = F.pad(x, self._static_pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _StaticPadPool:
    def forward(self, x):
        import torch.nn.functional as F

        return super().forward(F.pad(x, self._static_pads, value=self._pad_value))


CALIBRATION_RESOLUTION = 128      # recalibrate_bn feeds images of at most this size


def recalibrate_bn(model, resolution: int, seed: int) -> None:
    """Give BatchNorm layers the statistics of (seeded) random images, in place: two batches of four
    N(0, 1) images of min(``resolution``, 128) px from ``torch.Generator().manual_seed(seed)``.

    Freshly initialised timm models have BN with mean 0 / var 1 / gamma 1 / beta 0 and logits of ~1e-5:
    fp16 then underflows to subnormals, folded biases are all zero and a parity check cannot see a
    BN-folding mistake. With data statistics every BN output is ~unit variance and folding is exercised.
    Only BN running statistics change (weights are untouched); use recalibrate_bn=False to export as given.

    ``export_onnx(..., ExportOptions(recalibrate_bn=True, seed=S))`` calls this with the export
    resolution and S (the file's export record keeps "seed", "resolution" and "recalibrated_bn"), so when
    the record's "weights" is "seeded" (export_onnx built the model itself), ``build_model(spec, seed=S)``
    followed by ``recalibrate_bn(model, resolution, S)`` rebuilds the network the file holds.
    The global torch RNG is neither used nor advanced."""
    import torch

    resolution = min(int(resolution), CALIBRATION_RESOLUTION)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    gen = torch.Generator().manual_seed(seed)
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over the calibration batches
        m.train()
    try:
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(4, 3, resolution, resolution, generator=gen))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
            m.eval()


# --------------------------------------------------------------------------------------------
# Export

def export_onnx(spec: ModelSpec, path, options: ExportOptions | None = None, model=None, progress=None) -> ExportResult:
    """Export ``spec`` (built with scaleprof.models.build_model unless ``model`` is given) to ``path``.

    The file is written under a temporary name, checked, and renamed into place only when every
    check passed; on any failure nothing is left at ``path``."""
    import torch

    options = options or ExportOptions()
    _validate_options(options)
    say = progress or (lambda msg: None)
    path = check_writable_target(path)
    resolution = options.resolution or spec.resolution
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise BadInput(f"export resolution must be a positive integer, got {resolution!r}")
    timings = {}
    t_all = time.perf_counter()

    seeded = model is None                  # the weights are build_model(spec, seed=options.seed)'s
    if seeded:
        from scaleprof.models import build_model

        model = build_model(spec, "cpu", seed=options.seed)
    model = copy.deepcopy(model).float().eval()
    torch.manual_seed(options.seed)
    if options.recalibrate_bn:
        recalibrate_bn(model, resolution, options.seed)
    multiple = _freeze_same_padding(model, resolution, verify=options.dynamic)
    if not options.dynamic:
        multiple = 0
    reference = model                       # fp32 PyTorch: the parity reference for both precisions
    export_model = copy.deepcopy(model).half() if options.precision == "fp16" else model
    dtype = torch.float16 if options.precision == "fp16" else torch.float32

    with atomic_target(path) as tmp:
        say(f"exporting {spec.label} (opset {options.opset}, {options.precision}, "
            f"{'dynamic' if options.dynamic else 'static'} shapes)")
        t = time.perf_counter()
        batch = options.static_batch if not options.dynamic else 1
        example = torch.randn(batch, 3, resolution, resolution, dtype=dtype)
        _torch_export(export_model, example, tmp, options)
        timings["export"] = time.perf_counter() - t

        import onnx

        t = time.perf_counter()
        onnx_model = onnx.load(str(tmp))
        folded = fold_constants(onnx_model)
        leftover = dynamic_pads(onnx_model)
        if leftover:
            raise ScaleprofError(f"export left Pad nodes with computed pads ({', '.join(leftover[:3])}): "
                                 "TensorRT's ONNX parser cannot take them", exit_code=1)
        counts = _predicted_counts(spec, model, resolution)
        export_record = {
            "opset": options.opset, "precision": options.precision, "dynamic": options.dynamic,
            "static_batch": None if options.dynamic else options.static_batch, "resolution": resolution,
            "spatial_multiple": multiple, "exporter": options.exporter, "recalibrated_bn": options.recalibrate_bn,
            "seed": options.seed, "weights": "seeded" if seeded else "given",
            "input": INPUT_NAME, "output": OUTPUT_NAME,
            "versions": _versions(), "tolerance": dict(zip(("rtol", "atol"), options.tolerance())),
        }
        set_metadata(onnx_model, {META_SPEC: spec.to_json(), META_COUNTS: counts, META_EXPORT: export_record,
                                  META_VERSION: __version__})
        onnx_model.producer_name = "scaleprof"
        onnx_model.producer_version = __version__
        onnx_model.doc_string = f"{spec.label} exported by scaleprof {__version__}"
        onnx.save(onnx_model, str(tmp))
        timings["fold"] = time.perf_counter() - t

        t = time.perf_counter()
        _check(tmp)
        timings["check"] = time.perf_counter() - t

        parity = ()
        if options.check_parity:
            t = time.perf_counter()
            shapes = _parity_shapes(options, resolution, multiple)
            say(f"parity vs PyTorch in ONNX Runtime at {', '.join(f'{b}x3x{r}x{r}' for b, r in shapes)}")
            parity = _parity(reference, tmp, shapes, options)
            timings["parity"] = time.perf_counter() - t
            export_record["parity"] = [asdict(p) for p in parity]
            bad = [p for p in parity if not p.ok]
            if bad:
                rtol, atol = options.tolerance()
                worst = max(bad, key=lambda p: p.max_rel)
                raise ParityError(
                    f"parity check failed for {spec.label} ({options.precision}): at {worst.batch}x3x"
                    f"{worst.resolution}x{worst.resolution} max abs error {worst.max_abs:.3g} "
                    f"(relative {worst.max_rel:.3g}) exceeds atol {atol:g} + rtol {rtol:g} x {worst.ref_scale:.3g}; "
                    "nothing was written (loosen with --tolerance)")
            set_metadata(onnx_model, {META_EXPORT: export_record})
            onnx.save(onnx_model, str(tmp))
        in_shape, out_shape = _io_shapes(onnx_model)
        size = tmp.stat().st_size
    timings["total"] = time.perf_counter() - t_all
    return ExportResult(path=path, spec=spec, options=options, input_shape=in_shape, output_shape=out_shape,
                        parity=tuple(parity), spatial_multiple=multiple, folded_nodes=folded,
                        nodes=len(onnx_model.graph.node), seconds=timings, size_bytes=size)


def _validate_options(options: ExportOptions) -> None:
    import onnx

    if options.precision not in PRECISIONS:
        raise BadInput(f"unknown precision {options.precision!r}: choose fp32 or fp16")
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


def _torch_export(model, example, path: Path, options: ExportOptions) -> None:
    import torch

    dynamic = options.dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the TorchScript exporter's deprecation notice, tracer warnings
        try:
            if options.exporter == "torchscript":
                torch.onnx.export(
                    model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    opset_version=options.opset, do_constant_folding=True,
                    dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}}
                    if dynamic else None)
            else:
                from torch.export import Dim

                shapes = None
                if dynamic:
                    shapes = ({0: Dim("batch", min=1, max=4096), 2: Dim("height", min=16, max=4096),
                               3: Dim("width", min=16, max=4096)},)
                program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT_NAME],
                                            output_names=[OUTPUT_NAME], opset_version=options.opset,
                                            dynamic_shapes=shapes, verbose=False)
                program.save(str(path))
        except ScaleprofError:
            raise
        except Exception as err:  # the exporter's own failure: keep its first line, not its traceback
            raise ScaleprofError(f"the {options.exporter} ONNX exporter failed: {first_line(err, 300)}", exit_code=1)


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
        onnx.shape_inference.infer_shapes_path(str(path), str(path) + ".inferred", strict_mode=True)
    except Exception as err:
        raise ScaleprofError(f"exported model fails the ONNX checker: {first_line(err, 300)}", exit_code=1)
    finally:
        Path(str(path) + ".inferred").unlink(missing_ok=True)


def _parity_shapes(options, resolution, multiple):
    if not options.dynamic:
        return [(options.static_batch, resolution)]
    resolutions = options.parity_resolutions or (resolution, resolution + max(multiple, 32))
    return [(b, r) for r in resolutions for b in options.parity_batches]


def _parity(reference, path: Path, shapes, options) -> list[ParityCheck]:
    import onnxruntime as ort
    import torch

    rtol, atol = options.tolerance()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    np_dtype = np.float16 if options.precision == "fp16" else np.float32
    gen = torch.Generator().manual_seed(options.seed + 1)
    checks = []
    for batch, res in shapes:
        x = torch.randn(batch, 3, res, res, generator=gen)
        if options.precision == "fp16":
            x = x.half().float()             # the same input both sides
        with torch.no_grad():
            ref = reference(x).float().numpy()
        out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy().astype(np_dtype)})[0].astype(np.float32)
        if out.shape != ref.shape:
            raise ParityError(f"ONNX output shape {out.shape} differs from PyTorch's {ref.shape} at "
                              f"{batch}x3x{res}x{res}")
        max_abs = float(np.max(np.abs(out - ref))) if np.all(np.isfinite(out)) else float("inf")
        scale = float(np.max(np.abs(ref)))
        checks.append(ParityCheck(batch, res, max_abs, max_abs / scale if scale else max_abs, scale,
                                  max_abs <= atol + rtol * scale))
    return checks


def _predicted_counts(spec: ModelSpec, model, resolution: int) -> dict:
    """PyTorch-side counts for the metadata (per image at the export resolution)."""
    from scaleprof.complexity import count_model

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


def _io_shapes(model) -> tuple[tuple, tuple]:
    from scaleprof.core.onnx_file import dims_of, graph_inputs

    return dims_of(graph_inputs(model)[0]), dims_of(model.graph.output[0])
