"""A sweep's per-layer profiles as kernel timings, added to a kernel calibration: kernels timed inside
real networks (their weights and maps as the network leaves them in cache) beside the generated ones.

Each profiled point of the calibration's environment is exported again, statically, at the shape it
was measured at (cached), its kernels are read the way `predict FILE.onnx` reads them, and every
profiled layer whose name is a kernel's (ONNX Runtime names an optimised node after the exported
tensors it writes, so a static and a dynamic export of one spec name their kernels alike) becomes one
timed row. Layers no kernel is named after are left out and counted.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from scaleprof.errors import BadInput
from scaleprof.export.onnx_io import read_metadata
from scaleprof.export.quantize import record_flavour
from scaleprof.models import ModelSpec
from scaleprof.predict.kernel_calibration import ort_settings
from scaleprof.predict.onnx_kernels import file_kernels
from scaleprof.predict.samples import cache_root, load_points


def exported_file(spec, batch: int, resolution: int, precision: str = "fp32", flavour: str | None = None) -> Path:
    """A static-shape ONNX export of ``spec`` in the per-user cache (exported once: seconds); an int8
    point's file in its own flavour (activation type), as the sweep measured it."""
    from scaleprof.export import ExportOptions, export_onnx

    flavoured = f"{precision}-{flavour}act" if flavour else precision
    name = f"{spec.model}-{spec.key}-{batch}x{resolution}-{flavoured}.onnx"
    path = (cache_root() or _private_folder()) / "onnx" / name
    if path.is_file() and not _is_static_export_of(path, spec, batch, precision, flavour):
        path.unlink()                   # swapped or damaged: exported again, never read as this network
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        activations = {"int8_activations": flavour} if flavour else {}
        export_onnx(spec, path, ExportOptions(precision=precision, dynamic=False, static_batch=batch,
                                              resolution=resolution, check_parity=False, **activations))
    return path


def _is_static_export_of(path: Path, spec, batch: int, precision: str, flavour: str | None) -> bool:
    """Whether the cached ``path`` is the export its name says: by its metadata, not its name."""
    try:
        meta = read_metadata(path)
    except BadInput:
        return False
    export = meta.export or {}
    return meta.spec is not None and meta.spec.key == spec.key and export.get("precision") == precision and \
        record_flavour(export) == (flavour or ("int8" if precision == "int8" else ""))


def _private_folder() -> Path:
    """Without a per-user cache directory (no usable HOME): a folder of this process, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="scaleprof-exports-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def point_graph(point, threads, level):
    """The KernelGraph ONNX Runtime runs for a measured point (exported again at its shape, cached)."""
    path = exported_file(ModelSpec.from_dict(point.spec), point.batch, point.resolution, point.precision,
                         point.flavour)
    return file_kernels(path, threads, level)


def point_rows(point, threads, level) -> tuple[list, int]:
    """([(Kernel, ms)], layers left unmatched) of one profiled point."""
    by_name = {k.name: k for k in point_graph(point, threads, level).kernels}
    rows, missed = [], 0
    for layer in point.layers.layers:
        if layer.name in by_name and layer.time_ms > 0:
            rows.append((by_name[layer.name], float(layer.time_ms)))
        elif layer.time_ms > 0:
            missed += 1
    return rows, missed


def sweep_kernel_rows(path, cal, progress=None) -> tuple[list, dict]:
    """([(Kernel, ms)], summary) from the profiled points of ``cal``'s target and environment in a sweep
    directory or results.json. BadInput when there are none."""
    points, _, where = load_points(path)
    threads, level = ort_settings(cal.target_config)
    usable = [p for p in points if p.target == cal.target and p.env_key == cal.env_key and p.layers is not None
              and p.layers.layers and p.spec and p.resolution]
    if not usable:
        others = sorted({p.env_key for p in points if p.target == cal.target and p.layers is not None})
        raise BadInput(f"{where}: no point of {cal.target!r} profiled per layer in environment {cal.env_key}"
                       + (f" (profiled there: {', '.join(others)})" if others else "")
                       + "; sweep it with layers on, here")
    rows, missed = [], 0
    for i, point in enumerate(usable, 1):
        found, lost = point_rows(point, threads, level)
        rows += found
        missed += lost
        if progress:
            progress(f"  {i}/{len(usable)} {point.model} @{point.resolution} b{point.batch}: {len(found)} kernels")
    return rows, {"source": where, "points": len(usable), "kernels": len(rows), "layers_unmatched": missed}
