"""TensorRT optimisation profiles: pure functions, no TensorRT import, tested without a GPU.

- ``plan_profiles``: the optimisation profiles (min/opt/max) an engine is built with, one per
  shape range (TensorRT docs: one optimization profile per range of input shapes; kernels are
  tuned for the profile's opt shape).
- ``profile_dims``: a profile's min/opt/max dims for one network input, checked against the
  input's static dims.
- ``select_profile``: which profile of a built engine serves a shape.
- ``engine_profiles`` / ``profile_to_json``: a built engine's profiles, in the manifest and back.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from scaleprof.engines.base import EngineManifest, ShapePoint, ShapeRange
from scaleprof.engines.shapes import check_range, covering_range
from scaleprof.errors import BadInput

PROFILE_MODES = ("per-shape", "per-resolution", "single")


def plan_profiles(shapes: Iterable[ShapePoint], ranges: Iterable[ShapeRange] = (),
                  mode: str = "per-shape") -> tuple[ShapeRange, ...]:
    """The optimisation profiles of an engine, in profile-index order.

    Explicit ``ranges`` come first, one profile each, in the order given. Shapes no explicit range
    covers are then planned by ``mode``:

    - ``per-shape`` (default): one static profile (min = opt = max) per shape, so every measured
      shape runs kernels tuned for exactly that shape, as trtexec with ``--shapes`` would;
    - ``per-resolution``: one profile per resolution spanning its batch sizes, opt at the largest
      batch (fewer profiles, faster builds; small batches run kernels tuned for the large one);
    - ``single``: one profile spanning everything, opt at the largest batch and resolution.
    """
    if mode not in PROFILE_MODES:
        raise BadInput(f"profile mode {mode!r}: choose one of {', '.join(PROFILE_MODES)}")
    explicit = [check_range(r) for r in ranges]
    planned: list[ShapeRange] = list(dict.fromkeys(explicit))
    rest = sorted({p for p in shapes if not any(r.contains(p) for r in explicit)})
    if rest:
        if mode == "per-shape":
            planned += [ShapeRange(p, p, p) for p in rest]
        elif mode == "per-resolution":
            for res in sorted({p.resolution for p in rest}):
                planned.append(covering_range([p for p in rest if p.resolution == res]))
        else:
            planned.append(covering_range(rest))
    if not planned:
        raise BadInput("no shapes to build a TensorRT engine for")
    return tuple(planned)


def profile_dims(input_dims: Sequence, rng: ShapeRange, input_name: str = "input",
                 ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) dims of one NCHW network input for profile ``rng``.

    ``input_dims`` is the network's view of the input: ints, with -1 (TensorRT) or a string
    (ONNX dim_param) for dynamic dims. A static dim must equal what every point of the range asks.
    """
    dims = tuple(input_dims)
    if len(dims) != 4:
        raise BadInput(f"input {input_name!r} has {len(dims)} dims ({_fmt(dims)}); "
                       f"the TensorRT backend builds image models with NCHW inputs")
    out = []
    for point in (rng.min, rng.opt, rng.max):
        want = point.dims(channels=dims[1] if _static(dims[1]) else 3)
        for axis, (have, need) in enumerate(zip(dims, want)):
            if _static(have) and int(have) != need:
                raise BadInput(f"shape {point} does not fit input {input_name!r} ({_fmt(dims)}): dim {axis} "
                               f"is fixed at {have}; export with dynamic axes for other shapes")
        out.append(tuple(want))
    return out[0], out[1], out[2]


def is_dynamic(input_dims: Sequence) -> bool:
    return any(not _static(d) for d in input_dims)


def _static(dim) -> bool:
    return isinstance(dim, int) and dim >= 0


def _fmt(dims: Sequence) -> str:
    return "x".join("?" if not _static(d) else str(d) for d in dims)


def select_profile(ranges: Sequence[ShapeRange], shape: ShapePoint) -> int:
    """Index of the profile that serves ``shape``: one whose opt is exactly it, else the narrowest
    range containing it (its opt is closest in spirit to the shape). BadInput when none does."""
    candidates = [i for i, r in enumerate(ranges) if r.contains(shape)]
    if not candidates:
        spans = ", ".join(f"{r.min}..{r.max}" for r in ranges) or "none"
        raise BadInput(f"shape {shape} is outside every optimisation profile of this engine ({spans}); "
                       f"rebuild with that shape")
    exact = [i for i in candidates if ranges[i].opt == shape]
    if exact:
        return exact[0]

    def width(i: int) -> tuple[int, int, int]:
        r = ranges[i]
        return (r.max.batch - r.min.batch) * (r.max.resolution - r.min.resolution + 1), \
            abs(r.opt.batch - shape.batch), i

    return min(candidates, key=width)


def symbolic_shape(dims: Sequence) -> tuple:
    """TensorRT's engine dims (-1 for dynamic) -> Engine.input_shapes()'s spelling for NCHW:
    ('batch', 3, 'height', 'width')."""
    names = ("batch", "channels", "height", "width")
    return tuple(names[i] if (not _static(d) and i < 4) else d for i, d in enumerate(dims))


def profile_to_json(r: ShapeRange) -> dict:
    """A profile as the manifest's ``extras["profiles"]`` holds it."""
    return {k: {"batch": p.batch, "resolution": p.resolution}
            for k, p in (("min", r.min), ("opt", r.opt), ("max", r.max))}


def engine_profiles(manifest: EngineManifest) -> tuple[ShapeRange, ...]:
    """The engine's optimisation profiles in index order (extras['profiles']); () when static."""
    if "profiles" not in manifest.extras:
        return tuple(manifest.ranges)
    return tuple(ShapeRange(*(ShapePoint(**p[k]) for k in ("min", "opt", "max")))
                 for p in manifest.extras["profiles"])
