"""Shape sets: which input shapes an engine is built for.

Two spellings are accepted, both producing ``ShapePoint``s (one batch size at one square
resolution) and ``ShapeRange``s (TensorRT's min/opt/max optimisation profiles):

* trtexec's: ``input:1x3x224x224`` (several points separated by commas; the input name is
  optional), and for ranges ``--minShapes/--optShapes/--maxShapes`` (TensorRT docs, trtexec).
* a grid: ``--batch 1,8,32 --resolution 224,256`` is every (batch, resolution) pair.

Every malformed value is a ``BadInput`` worded for the user.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from scaleprof.core.limits import MAX_RESOLUTION, MIN_RESOLUTION, check_batch
from scaleprof.engines.base import ShapePoint, ShapeRange
from scaleprof.errors import BadInput

_DIMS = re.compile(r"^\d+(x\d+)*$")


def parse_int_list(text: str | Iterable, what: str) -> tuple[int, ...]:
    """'1,8,32' (or an iterable of ints / strings) -> (1, 8, 32); every value a positive integer."""
    items = text.split(",") if isinstance(text, str) else list(text)
    values = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if not item.isdigit() or int(item) <= 0:
            raise BadInput(f"{what} must be positive integers separated by commas, got {item!r}")
        values.append(int(item))
    if not values:
        raise BadInput(f"no {what} given")
    return tuple(dict.fromkeys(values))          # de-duplicated, order kept


def parse_point(text: str, input_name: str | None = None) -> tuple[str | None, ShapePoint]:
    """One trtexec shape, ``[name:]NxCxHxW`` -> (name or None, ShapePoint). H must equal W, C 3."""
    raw = text.strip()
    name, _, dims_text = raw.rpartition(":")
    name = name or None
    if not _DIMS.match(dims_text or ""):
        raise BadInput(f"shape {raw!r} is not in trtexec's spelling NAME:NxCxHxW (e.g. input:1x3x224x224)")
    dims = [int(d) for d in dims_text.split("x")]
    if len(dims) != 4:
        raise BadInput(f"shape {raw!r} has {len(dims)} dims; an image input has 4 (NxCxHxW)")
    batch, channels, height, width = dims
    if min(dims) <= 0:
        raise BadInput(f"shape {raw!r} has a zero dimension")
    if channels != 3:
        raise BadInput(f"shape {raw!r} has {channels} channels; scaleprof's models take 3 (NxCxHxW)")
    if height != width:
        raise BadInput(f"shape {raw!r} is not square ({height}x{width}); scaleprof's shape sets are square")
    if name is not None and input_name is not None and name != input_name:
        raise BadInput(f"shape {raw!r} names input {name!r}, but the model's input is {input_name!r}")
    return name, check_point(ShapePoint(batch, height), f"shape {raw!r}")


def check_point(point: ShapePoint, what: str) -> ShapePoint:
    """``point`` unless its batch or resolution is beyond what scaleprof runs (scaleprof.core.limits)."""
    check_batch(point.batch, f"{what}: batch")
    if point.resolution > MAX_RESOLUTION:
        raise BadInput(f"{what}: resolution {point.resolution} is above {MAX_RESOLUTION}, the largest scaleprof runs")
    if point.resolution < MIN_RESOLUTION:
        raise BadInput(f"{what}: resolution {point.resolution} is below {MIN_RESOLUTION}, the smallest scaleprof runs "
                       f"(the networks' total stride)")
    return point


def parse_points(text: str, input_name: str | None = None) -> tuple[ShapePoint, ...]:
    """'input:1x3x224x224,input:8x3x224x224' -> the points, sorted and de-duplicated."""
    parts = [p for p in text.replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise BadInput("no shapes given (expected e.g. input:1x3x224x224)")
    return tuple(sorted({parse_point(p, input_name)[1] for p in parts}))


def parse_range(min_text: str, opt_text: str | None, max_text: str,
                input_name: str | None = None) -> ShapeRange:
    """trtexec's --minShapes/--optShapes/--maxShapes (one input each) -> a ShapeRange.
    Without an opt shape, opt = max (trtexec's default is likewise the max)."""
    lo = parse_point(min_text, input_name)[1]
    hi = parse_point(max_text, input_name)[1]
    opt = parse_point(opt_text, input_name)[1] if opt_text else hi
    return check_range(ShapeRange(lo, opt, hi))


def check_range(rng: ShapeRange) -> ShapeRange:
    """``rng`` when 1 <= min <= opt <= max in batch and resolution, else BadInput."""
    ok = (rng.min.batch <= rng.opt.batch <= rng.max.batch
          and rng.min.resolution <= rng.opt.resolution <= rng.max.resolution)
    if not ok or rng.min.batch < 1 or rng.min.resolution < 1:
        raise BadInput(f"shape range needs 1 <= min <= opt <= max in every dim, got "
                       f"min {rng.min}, opt {rng.opt}, max {rng.max}")
    return rng


def covering_range(points: Sequence[ShapePoint], opt: ShapePoint | None = None) -> ShapeRange:
    """The smallest range holding every point; opt defaults to its max."""
    lo = ShapePoint(min(p.batch for p in points), min(p.resolution for p in points))
    hi = ShapePoint(max(p.batch for p in points), max(p.resolution for p in points))
    return ShapeRange(lo, opt or hi, hi)


def grid(batches: str | Sequence[int], resolutions: str | Sequence[int]) -> tuple[ShapePoint, ...]:
    """--batch 1,8,32 --resolution 224,256 -> every (batch, resolution) pair, sorted."""
    bs = parse_int_list(batches, "batch sizes")
    rs = parse_int_list(resolutions, "resolutions")
    return tuple(sorted(check_point(ShapePoint(b, r), "--batch/--resolution") for b in bs for r in rs))


def shape_set(*, shapes: str | None = None, batch: str | None = None, resolution: str | None = None,
              min_shapes: str | None = None, opt_shapes: str | None = None, max_shapes: str | None = None,
              default_resolution: int = 224, input_name: str | None = None,
              ) -> tuple[tuple[ShapePoint, ...], tuple[ShapeRange, ...]]:
    """Combine the CLI's shape options into (points, ranges) for a BuildSpec.

    Points come from ``shapes`` (trtexec spelling) and/or the ``batch`` x ``resolution`` grid
    (a missing half defaults to batch 1 / ``default_resolution``, the model's own). A range's
    min, opt and max points are also added to the points, so each is built and can be timed.
    """
    points: set[ShapePoint] = set()
    if shapes:
        points.update(parse_points(shapes, input_name))
    if batch or resolution or not (shapes or min_shapes or max_shapes):
        points.update(grid(batch or "1", resolution or str(default_resolution)))
    ranges: tuple[ShapeRange, ...] = ()
    if min_shapes or opt_shapes or max_shapes:
        if not (min_shapes and max_shapes):
            raise BadInput("a shape range needs both --minShapes and --maxShapes (--optShapes is optional)")
        rng = parse_range(min_shapes, opt_shapes, max_shapes, input_name)
        ranges = (rng,)
        points.update((rng.min, rng.opt, rng.max))
    return tuple(sorted(points)), ranges


def describe(points: Iterable[ShapePoint], ranges: Iterable[ShapeRange] = ()) -> str:
    """'1x3x224x224, 8x3x224x224; range 1x3x224x224..32x3x256x256' for messages."""
    text = ", ".join(str(p) for p in points) or "none"
    rngs = [f"{r.min}..{r.max} (opt {r.opt})" for r in ranges]
    return text + (f"; ranges {', '.join(rngs)}" if rngs else "")


def check_accepts(engine, shape: ShapePoint) -> None:
    """BadInput naming the engine's shape set when ``shape`` is outside it."""
    if not engine.accepts(shape):
        m = engine.manifest
        raise BadInput(f"shape {shape} is outside this {m.backend} engine's shape set "
                       f"({describe(m.shapes, m.ranges)}); rebuild with that shape")


def fits_model_input(dims: Sequence, points: Iterable[ShapePoint], ranges: Iterable[ShapeRange] = (),
                     input_name: str = "input") -> None:
    """BadInput when a requested shape contradicts the ONNX input's static dims (e.g. a --static export)."""
    wanted = list(points) + [p for r in ranges for p in (r.min, r.opt, r.max)]
    for p in wanted:
        for axis, (have, need) in enumerate(zip(dims, p.dims())):
            if isinstance(have, int) and have > 0 and have != need:
                raise BadInput(f"shape {p} does not fit the model's input {input_name!r} "
                               f"({'x'.join(str(d) for d in dims)}): dim {axis} is fixed at {have}; "
                               f"export with dynamic axes for other shapes")
