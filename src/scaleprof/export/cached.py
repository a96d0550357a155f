"""One exported file per spec and precision in a directory: the export step of every workflow
that goes on to build and time (the sweep, ``recommend --verify``), so they name and check a
file the same way and find each other's exports."""

from __future__ import annotations

from pathlib import Path

from scaleprof.complexity.onnx_count import check_graph_matches
from scaleprof.errors import ScaleprofError
from scaleprof.export.onnx_io import load_model, metadata_from_model
from scaleprof.export.options import ExportOptions
from scaleprof.export.quantize import record_flavour


def export_file_name(spec, precision: str, flavour: str | None = None) -> str:
    """The file name of ``spec`` exported at ``precision`` (and int8 ``flavour``, its activation type):
    the spec key names its content."""
    flavoured = f"{precision}-{flavour}act" if flavour else precision
    return f"{spec.model}-{spec.key}-{flavoured}.onnx"


def export_options_for_timing(spec, precision: str, flavour: str | None = None) -> ExportOptions:
    """Parity checked at one shape (batch 1, the spec's resolution) rather than export's default
    four: the export stage's own tests cover dynamic shapes, and on a 2-core CPU the other three
    runs would double the export time of a sweep or a verification."""
    activations = {"int8_activations": flavour} if flavour else {}
    return ExportOptions(precision=precision, parity_batches=(1,), parity_resolutions=(spec.resolution,),
                         **activations)


def cached_export(spec, precision: str, directory: str | Path, flavour: str | None = None) -> Path:
    """The ONNX file of ``spec`` at ``precision`` in ``directory``, exported when missing. export_onnx
    writes under a temporary name and renames only a fully checked file, so a file under this name
    is complete; a file there that is not this export (swapped or damaged) is exported again, never
    timed as the model."""
    from scaleprof.export.onnx_export import export_onnx     # imports torch

    path = Path(directory) / export_file_name(spec, precision, flavour)
    if path.is_file() and not is_export_of(path, spec, precision, flavour):
        path.unlink()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(spec, path, export_options_for_timing(spec, precision, flavour))
    return path


def is_export_of(path: Path, spec, precision: str, flavour: str | None = None) -> bool:
    """Whether the file ``path`` is the export of ``spec`` at ``precision`` in ``flavour``: by its metadata
    and by its graph (scaleprof.complexity.onnx_count.check_graph_matches), not by its name."""
    try:
        model = load_model(path, load_weights=False)
        meta = metadata_from_model(model)
        if meta.spec is None or meta.spec.key != spec.key or (meta.export or {}).get("precision") != precision \
                or (record_flavour(meta.export) or None) != (flavour or None):
            return False
        check_graph_matches(model, path)
    except ScaleprofError:
        return False
    return True
