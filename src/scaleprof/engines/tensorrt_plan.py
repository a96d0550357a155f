"""TensorRT build planning: pure functions, no TensorRT import, so CI tests them without a GPU.

- ``plan_profiles``: the optimisation profiles (min/opt/max) an engine is built with, one per
  shape range (TensorRT docs: one optimization profile per range of input shapes; kernels are
  tuned for the profile's opt shape).
- ``profile_dims``: a profile's min/opt/max dims for one network input, checked against the
  input's static dims.
- ``select_profile``: which profile of a built engine serves a shape.
- ``precision_mode``: builder flag (TensorRT 10) or strongly typed network (TensorRT 10 with an
  fp16 ONNX export, always in TensorRT 11, which removed the precision builder flags).
- ``key_parts``: what the engine cache key must hold beyond the ONNX file and the BuildSpec:
  engines are specific to GPU model and TensorRT version (TensorRT docs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from scaleprof.engines.base import BuildSpec, ShapePoint, ShapeRange
from scaleprof.engines.shapes import check_range, covering_range
from scaleprof.core.text import slug
from scaleprof.errors import BadInput, EnvironmentProblem

INSTALL_HINT = ("pip install 'scaleprof[tensorrt]' on a host with an NVIDIA GPU, "
                "or run scaleprof in the GPU image (docker/Dockerfile)")

PROFILE_MODES = ("per-shape", "per-resolution", "single")
DEFAULT_OPT_LEVEL = 3                       # TensorRT's own default builder optimisation level
OPTION_NAMES = ("profiles", "opt_level", "workspace_mib", "timing_cache", "trtexec")


# --- options -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrtOptions:
    """The TensorRT options of a BuildSpec (``spec.options``), validated."""

    profiles: str = "per-shape"          # how shapes become optimisation profiles (see plan_profiles)
    opt_level: int = DEFAULT_OPT_LEVEL   # IBuilderConfig.builder_optimization_level, 0..5
    workspace_mib: int | None = None     # MemoryPoolType.WORKSPACE limit; None: TensorRT's default
    timing_cache: str | None = None      # timing cache file; None: the per-device default path
    trtexec: str | None = None           # build and profile through this trtexec instead of the API


def trt_options(spec: BuildSpec) -> TrtOptions:
    opts = dict(spec.options)
    unknown = sorted(set(opts) - set(OPTION_NAMES))
    if unknown:
        raise BadInput(f"unknown TensorRT option(s) {', '.join(unknown)}: known are {', '.join(OPTION_NAMES)}")
    profiles = str(opts.get("profiles", "per-shape"))
    if profiles not in PROFILE_MODES:
        raise BadInput(f"TensorRT option profiles={profiles!r}: choose one of {', '.join(PROFILE_MODES)}")
    try:
        level = int(opts.get("opt_level", DEFAULT_OPT_LEVEL))
    except (TypeError, ValueError):
        raise BadInput(f"TensorRT option opt_level={opts['opt_level']!r} is not an integer") from None
    if not 0 <= level <= 5:
        raise BadInput(f"TensorRT option opt_level={level}: the builder optimisation level is 0..5")
    workspace = opts.get("workspace_mib")
    if workspace is not None:
        try:
            workspace = int(workspace)
        except (TypeError, ValueError):
            raise BadInput(f"TensorRT option workspace_mib={workspace!r} is not an integer") from None
        if workspace <= 0:
            raise BadInput(f"TensorRT option workspace_mib={workspace}: must be positive (MiB)")
    cache = opts.get("timing_cache")
    trtexec = opts.get("trtexec")
    return TrtOptions(profiles, level, workspace, str(cache) if cache else None,
                      str(trtexec) if trtexec else None)


# --- optimisation profiles -----------------------------------------------------------------

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


# --- precision -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PrecisionMode:
    """How the requested precision is obtained from TensorRT, recorded in the manifest extras."""

    name: str                 # "fp32", "builder-flag-fp16", "strongly-typed"
    strongly_typed: bool      # NetworkDefinitionCreationFlag.STRONGLY_TYPED (always on in TRT 11)
    fp16_flag: bool           # BuilderFlag.FP16 (TensorRT 10 only)
    note: str


def precision_mode(trt_major: int, precision: str, onnx_precision: str) -> PrecisionMode:
    """Decide how to build ``precision`` ("fp32"/"fp16") from an ONNX model whose float weights
    are ``onnx_precision`` ("fp32", "fp16" or "mixed").

    TensorRT 10: fp16 from an fp32 export uses the FP16 builder flag (weak typing: TensorRT may
    pick fp16 kernels per layer); from an fp16 export, a strongly typed network keeps the export's
    types. TensorRT 11 removed the precision flags: every network is strongly typed, so fp16 needs
    an fp16 export (``scaleprof export --precision fp16``).
    """
    if precision not in ("fp32", "fp16"):
        raise BadInput(f"TensorRT backend precision {precision!r}: choose fp32 or fp16")
    if trt_major < 10:
        raise EnvironmentProblem(f"TensorRT {trt_major}.x is too old: scaleprof needs TensorRT 10 or 11 ({INSTALL_HINT})")
    low = onnx_precision in ("fp16", "mixed")
    if precision == "fp32":
        if low:
            raise BadInput(f"the ONNX model holds {onnx_precision} weights but fp32 was asked for: "
                           f"export with --precision fp32, or build with --precision fp16")
        if trt_major >= 11:
            return PrecisionMode("fp32", True, False, "TensorRT 11: strongly typed network from an fp32 export")
        return PrecisionMode("fp32", False, False, "TensorRT 10: fp32 network (TF32 allowed, TensorRT's default)")
    if low:
        return PrecisionMode("strongly-typed", True, False,
                             f"strongly typed network: fp16 comes from the {onnx_precision} ONNX export")
    if trt_major >= 11:
        raise BadInput("TensorRT 11 builds strongly typed networks only (the FP16 builder flag was removed): "
                       "export the model with --precision fp16 and build that file")
    return PrecisionMode("builder-flag-fp16", False, True,
                         "TensorRT 10: BuilderFlag.FP16 on an fp32 export (TensorRT picks fp16 kernels per layer)")


def onnx_float_precision(model) -> str:
    """'fp32', 'fp16' or 'mixed' from the float initializers (weights) of an onnx.ModelProto;
    graph inputs decide when there are no float weights."""
    FLOAT, FLOAT16, BFLOAT16, DOUBLE = 1, 10, 16, 11      # onnx.TensorProto data types
    counts = {"fp32": 0, "fp16": 0}
    for init in model.graph.initializer:
        if init.data_type in (FLOAT, DOUBLE):
            counts["fp32"] += 1
        elif init.data_type in (FLOAT16, BFLOAT16):
            counts["fp16"] += 1
    if not any(counts.values()):
        for inp in model.graph.input:
            elem = inp.type.tensor_type.elem_type
            if elem in (FLOAT16, BFLOAT16):
                counts["fp16"] += 1
            elif elem in (FLOAT, DOUBLE):
                counts["fp32"] += 1
    if counts["fp16"] and counts["fp32"]:
        # a few fp32 weights (e.g. normalisation kept in fp32 by an autocast) still make a mixed model
        return "mixed"
    return "fp16" if counts["fp16"] else "fp32"


def parse_version(text: str) -> tuple[int, int, int]:
    """'10.5.0.18' / '11.0.0' -> (10, 5, 0)."""
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise EnvironmentProblem(f"cannot read the TensorRT version {text!r}")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


# --- cache keys and the timing cache -------------------------------------------------------

def key_parts(spec: BuildSpec, *, trt_version: str, gpu_name: str, compute_capability: str = "",
              builder: str = "python-api") -> dict:
    """Everything a TensorRT engine depends on besides the ONNX bytes and the BuildSpec fields:
    TensorRT version and GPU (engines are specific to both), the planned profiles and the builder
    options. ``builder`` is "python-api" or "trtexec". (How the precision is obtained follows from
    the TensorRT major version, the ONNX file and spec.precision, all already in the key.)"""
    opts = trt_options(spec)
    profiles = plan_profiles(spec.shapes, spec.ranges, opts.profiles)
    return {
        "tensorrt_version": trt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "builder": builder,
        "builder_optimization_level": opts.opt_level,
        "workspace_mib": opts.workspace_mib,
        "profiling_verbosity": "detailed",
        "profiles": [[str(r.min), str(r.opt), str(r.max)] for r in profiles],
    }


def timing_cache_path(gpu_name: str, trt_version: str, override: str | None = None) -> Path:
    """The persistent timing cache for this GPU model and TensorRT version (a timing cache is
    specific to both, TensorRT docs). $SCALEPROF_CACHE_DIR, else $XDG_CACHE_HOME/scaleprof,
    else ~/.cache/scaleprof."""
    if override:
        return Path(override).expanduser()
    root = os.environ.get("SCALEPROF_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scaleprof"
    return base / "tensorrt" / f"timing-{slug(gpu_name, 'unknown')}-trt{slug(trt_version, 'unknown')}.cache"


# --- runtime helpers -----------------------------------------------------------------------

TORCH_DTYPES = {                 # tensorrt.DataType member name -> torch dtype name
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32",
    "INT64": "int64", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool",
}


def torch_dtype_name(trt_dtype) -> str:
    """torch dtype name for a tensorrt.DataType (by member name, so no TensorRT import here)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    if name not in TORCH_DTYPES:
        raise EnvironmentProblem(f"TensorRT tensor type {name} has no torch equivalent here")
    return TORCH_DTYPES[name]


def sidecar_paths(plan: Path) -> dict[str, Path]:
    """NVIDIA's engine explorer reads ``<engine>.graph.json`` and ``<engine>.profile.json`` beside
    the plan; ``<engine>.timing.json`` holds end-to-end times in trtexec's --exportTimes format."""
    plan = Path(plan)
    return {kind: plan.with_name(f"{plan.name}.{kind}.json") for kind in ("graph", "profile", "timing")}
