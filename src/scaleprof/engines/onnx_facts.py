"""What `scaleprof build` must know of an ONNX file before it can name a shape set, remembered by
the file's content hash in the engine cache, so a cache hit never imports onnx (about a second).

    input        the image input's name and dims (ints; strings for dynamic dims)
    resolution   the file's own resolution: its scaleprof spec's, else the input's fixed height,
                 else 224
    rule         (base, multiple): dynamic resolutions must be base + k * multiple (same-padding
                 frozen at export, a detector's largest stride); (0, 1) when any resolution goes
    quantized    "int8" or "fp8" for a QDQ file (the precision it builds in), else None

The memo ``<cache>/.onnx-facts/<sha256>.json`` is written once per file content, after its first
engine is in the cache; one that cannot be read is recomputed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from scaleprof.core.files import write_atomic
from scaleprof.core.onnx_file import (
    META_EXPORT,
    META_SPEC,
    image_input,
    load_model,
    metadata_props,
    quantized_precision,
)
from scaleprof.engines.base import ShapePoint, ShapeRange
from scaleprof.errors import BadInput

FACTS_DIR = ".onnx-facts"


@dataclass(frozen=True)
class OnnxFacts:
    input: str
    dims: tuple
    resolution: int
    rule: tuple[int, int] = (0, 1)
    quantized: str | None = None

    def check_resolutions(self, points: Iterable[ShapePoint], ranges: Iterable[ShapeRange] = ()) -> None:
        """BadInput for a resolution the graph cannot take (off its base + k * multiple rule)."""
        base, multiple = self.rule
        if multiple <= 1:
            return
        wanted = sorted({p.resolution for p in points} | {p.resolution for r in ranges for p in (r.min, r.opt, r.max)})
        wrong = [r for r in wanted if (r - base) % multiple]
        if wrong:
            raise BadInput(f"resolution {wrong[0]} does not fit this model's graph: it takes {base} + k*{multiple} "
                           f"px (e.g. {base}, {base + multiple}); re-export at {wrong[0]} to build that size")


def read_facts(onnx_path: Path) -> OnnxFacts:
    model = load_model(onnx_path, load_weights=False)
    name, dims = image_input(model, onnx_path)
    parsed = metadata_props(model)[1]
    spec, export = parsed.get(META_SPEC), parsed.get(META_EXPORT)
    resolution = dims[2] if isinstance(dims[2], int) and dims[2] > 0 else 224
    if isinstance(spec, dict) and isinstance(spec.get("resolution"), int) and spec["resolution"] > 0:
        resolution = spec["resolution"]
    rule = (0, 1)
    if isinstance(export, dict) and isinstance(export.get("spatial_multiple"), int) and export["spatial_multiple"] > 1:
        base = export.get("resolution") if isinstance(export.get("resolution"), int) else resolution
        rule = (base, export["spatial_multiple"])
    return OnnxFacts(name, tuple(dims), resolution, rule, quantized_precision(model))


def cached_facts(cache_dir: Path, digest: str) -> OnnxFacts | None:
    """The memo of the file whose onnx_sha256 is ``digest``; None when there is none (or it is unreadable)."""
    try:
        data = json.loads(_memo(cache_dir, digest).read_text(encoding="utf-8"))
        quantized = data["quantized"]            # a memo written before precisions were recorded: recomputed
        if quantized not in (None, "int8", "fp8"):
            return None
        return OnnxFacts(data["input"], tuple(data["dims"]), int(data["resolution"]), tuple(data["rule"]), quantized)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_facts(cache_dir: Path, digest: str, facts: OnnxFacts) -> None:
    """Write the memo (once the cache holds an engine of the file: a refused request leaves none)."""
    memo = _memo(cache_dir, digest)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(memo, json.dumps(asdict(facts)))
    except OSError:                  # a read-only cache still builds; the next run reads the file again
        pass


def _memo(cache_dir: Path, digest: str) -> Path:
    return Path(cache_dir) / FACTS_DIR / f"{digest}.json"
