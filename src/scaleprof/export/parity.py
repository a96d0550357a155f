"""Numerical parity of an exported file against its PyTorch network, in ONNX Runtime (CPU).

Importing this module imports neither torch nor ONNX Runtime; checking does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scaleprof.core.onnx_file import QUANTIZED
from scaleprof.errors import ScaleprofError
from scaleprof.export.options import INPUT_NAME, OUTPUT_NAME, ExportOptions


class ParityError(ScaleprofError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


@dataclass(frozen=True)
class ParityCheck:
    batch: int
    resolution: int
    max_abs: float          # max |onnx - torch|
    max_rel: float          # max_abs / max |torch|
    ref_scale: float        # max |torch|
    ok: bool
    top1: float | None = None   # int8/fp8: the fraction of images whose top class agrees with fp32's


def parity_shapes(options: ExportOptions, resolution: int, multiple: int) -> list[tuple[int, int]]:
    """(batch, resolution) pairs to check: the static shape, or every parity batch at the export
    resolution and at one that keeps the spatial multiple (or 32 px more)."""
    if not options.dynamic:
        return [(options.static_batch, resolution)]
    resolutions = options.parity_resolutions or (resolution, resolution + max(multiple, 32))
    return [(b, r) for r in resolutions for b in options.parity_batches]


def check_parity(reference, path: Path, shapes, options: ExportOptions, outputs=(OUTPUT_NAME,)) -> list[ParityCheck]:
    """One ParityCheck per (batch, resolution): seeded N(0, 1) inputs through ``reference`` (fp32
    PyTorch) and through the file; a different output shape is a ParityError at once. An int8/fp8
    (QDQ) file is compared with the fp32 network too: its error is the quantization's, and for a
    classifier the check also counts the images whose top class agrees (``top1``). A network with
    several outputs (a detector's class and box maps per level) is checked output by output, each
    against its own scale; the check reports the output closest to failing."""
    import numpy as np
    import onnxruntime as ort
    import torch

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
            refs = reference(x)
        refs = [r.float().numpy() for r in (refs if isinstance(refs, (tuple, list)) else (refs,))]
        outs = session.run(list(outputs), {INPUT_NAME: x.numpy().astype(np_dtype)})
        if len(outs) != len(refs):
            raise ParityError(f"the ONNX file has {len(outs)} outputs, the PyTorch network {len(refs)}")
        per_output = [_compare(out.astype(np.float32), ref, batch, res, options) for out, ref in zip(outs, refs)]
        checks.append(max(per_output, key=lambda c: (not c.ok, c.max_abs / _allowed(c, options))))
    return checks


def _allowed(check: ParityCheck, options: ExportOptions) -> float:
    rtol, atol = options.tolerance()
    return atol + rtol * check.ref_scale or 1.0


def _compare(out, ref, batch: int, res: int, options: ExportOptions) -> ParityCheck:
    import numpy as np

    if out.shape != ref.shape:
        raise ParityError(f"ONNX output shape {out.shape} differs from PyTorch's {ref.shape} at "
                          f"{batch}x3x{res}x{res}")
    rtol, atol = options.tolerance()
    max_abs = float(np.max(np.abs(out - ref))) if np.all(np.isfinite(out)) else float("inf")
    scale = float(np.max(np.abs(ref)))
    top1 = None
    if options.precision in QUANTIZED and ref.ndim == 2:      # a classifier's logits
        top1 = float(np.mean(np.argmax(out, axis=1) == np.argmax(ref, axis=1)))
    return ParityCheck(batch, res, max_abs, max_abs / scale if scale else max_abs, scale,
                       max_abs <= atol + rtol * scale, top1)


def raise_on_failure(label: str, checks, options: ExportOptions) -> None:
    """ParityError naming the worst failed check, if any failed."""
    bad = [p for p in checks if not p.ok]
    if not bad:
        return
    rtol, atol = options.tolerance()
    worst = max(bad, key=lambda p: p.max_rel)
    raise ParityError(
        f"parity check failed for {label} ({options.precision}{' against fp32' if options.precision in QUANTIZED else ''}): at {worst.batch}x3x"
        f"{worst.resolution}x{worst.resolution} max abs error {worst.max_abs:.3g} "
        f"(relative {worst.max_rel:.3g}) exceeds atol {atol:g} + rtol {rtol:g} x {worst.ref_scale:.3g}; "
        "nothing was written (loosen with --tolerance)")
