"""Numerical parity of an exported file against its PyTorch network, in ONNX Runtime (CPU).

Importing this module imports neither torch nor ONNX Runtime; checking does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def parity_shapes(options: ExportOptions, resolution: int, multiple: int) -> list[tuple[int, int]]:
    """(batch, resolution) pairs to check: the static shape, or every parity batch at the export
    resolution and at one that keeps the spatial multiple (or 32 px more)."""
    if not options.dynamic:
        return [(options.static_batch, resolution)]
    resolutions = options.parity_resolutions or (resolution, resolution + max(multiple, 32))
    return [(b, r) for r in resolutions for b in options.parity_batches]


def check_parity(reference, path: Path, shapes, options: ExportOptions) -> list[ParityCheck]:
    """One ParityCheck per (batch, resolution): seeded N(0, 1) inputs through ``reference`` (fp32
    PyTorch) and through the file; a different output shape is a ParityError at once."""
    import numpy as np
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


def raise_on_failure(label: str, checks, options: ExportOptions) -> None:
    """ParityError naming the worst failed check, if any failed."""
    bad = [p for p in checks if not p.ok]
    if not bad:
        return
    rtol, atol = options.tolerance()
    worst = max(bad, key=lambda p: p.max_rel)
    raise ParityError(
        f"parity check failed for {label} ({options.precision}): at {worst.batch}x3x"
        f"{worst.resolution}x{worst.resolution} max abs error {worst.max_abs:.3g} "
        f"(relative {worst.max_rel:.3g}) exceeds atol {atol:g} + rtol {rtol:g} x {worst.ref_scale:.3g}; "
        "nothing was written (loosen with --tolerance)")
