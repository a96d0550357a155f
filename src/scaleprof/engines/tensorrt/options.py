"""TensorRT build options and what follows from them: pure functions, no TensorRT import.

- ``trt_options``: the TensorRT options of a BuildSpec, validated (``TrtOptions``).
- ``precision_mode``: builder flag (TensorRT 10) or strongly typed network (TensorRT 10 with an
  fp16 ONNX export, always in TensorRT 11, which removed the precision builder flags).
- ``key_parts``: what the engine cache key must hold beyond the ONNX file and the BuildSpec:
  engines are specific to GPU model and TensorRT version (TensorRT docs).
- ``timing_cache_path`` and ``sidecar_paths``: where the timing cache and an engine's JSON files live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scaleprof.core.files import user_cache_dir
from scaleprof.core.onnx_file import PRECISIONS, QUANTIZED
from scaleprof.core.text import slug
from scaleprof.engines.base import BuildSpec
from scaleprof.engines.tensorrt.library import INSTALL_HINT
from scaleprof.engines.tensorrt.profiles import PROFILE_MODES, plan_profiles
from scaleprof.errors import BadInput, EnvironmentProblem

DEFAULT_OPT_LEVEL = 3                       # TensorRT's own default builder optimisation level
OPTION_NAMES = ("profiles", "opt_level", "workspace_mib", "timing_cache", "trtexec", "compute_capabilities",
                "determinism", "gpu_memory_gib", "runtime_cache")
PLAN_NAME = "engine.plan"
NODES_NAME = "onnx_nodes.json"


# --- options -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrtOptions:
    """The TensorRT options of a BuildSpec (``spec.options``), validated."""

    profiles: str = "per-shape"          # how shapes become optimisation profiles (see plan_profiles)
    opt_level: int = DEFAULT_OPT_LEVEL   # IBuilderConfig.builder_optimization_level, 0..5
    workspace_mib: int | None = None     # MemoryPoolType.WORKSPACE limit; None: TensorRT's default
    timing_cache: str | None = None      # timing cache file; None: the per-device default path
    trtexec: str | None = None           # build and profile through this trtexec instead of the API
    compute_capabilities: tuple[str, ...] = ()   # TensorRT-RTX's targets ("8.6", ...) or ("current",); () default
    determinism: str | None = None       # "check": build twice, compare the plans' bytes
    gpu_memory_gib: float | None = None  # the target GPU's memory, for the per-profile check
    runtime_cache: str | None = None     # TensorRT-RTX IRuntimeCache file, used when the engine runs

    def key(self) -> dict:
        """The options as the cache key holds them: canonical values, defaults left out, so
        equivalent spellings (8.9,8.6 and 8.6,8.9; opt_level=3 and none) give one key."""
        defaults = TrtOptions()
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in self.__dict__.items() if value != getattr(defaults, name)}


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
    runtime_cache = opts.get("runtime_cache")
    return TrtOptions(profiles, level, workspace, str(cache) if cache else None,
                      str(trtexec) if trtexec else None, compute_capabilities(opts.get("compute_capabilities")),
                      determinism_option(opts.get("determinism")), gpu_memory(opts.get("gpu_memory_gib")),
                      str(Path(str(runtime_cache)).expanduser().resolve()) if runtime_cache else None)


def determinism_option(value) -> str | None:
    text = "" if value is None or value is False else str(value).strip().lower()
    if text in ("", "off", "none"):
        return None
    if text in ("check", "true"):
        return "check"
    raise BadInput(f"TensorRT option determinism={value!r}: use determinism=check (build twice and compare)")


def gpu_memory(value) -> float | None:
    if value is None:
        return None
    try:
        gib = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"TensorRT option gpu_memory_gib={value!r} is not a number") from None
    if not 0 < gib < 1e6:
        raise BadInput(f"TensorRT option gpu_memory_gib={value!r}: give the target GPU's memory in GiB, e.g. 24")
    return gib


def compute_capabilities(value) -> tuple[str, ...]:
    """'8.6,8.9' (or '8.6+8.9') -> ('8.6', '8.9') sorted; 'current' -> ('current',); None or 'default' -> ()."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "default"):
        return ()
    if text == "current":
        return ("current",)
    items = {v.strip() for v in text.replace("+", ",").split(",") if v.strip()}
    for item in items:
        if not re.fullmatch(r"\d{1,2}\.\d", item):
            raise BadInput(f"compute capability {item!r}: give MAJOR.MINOR values such as 8.6,8.9,12.0, "
                           f"or 'current', or 'default'")
    return tuple(sorted(items, key=lambda v: tuple(int(p) for p in v.split("."))))


# --- precision -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PrecisionMode:
    """How the requested precision is obtained from TensorRT, recorded in the manifest extras."""

    name: str                 # "fp32", "builder-flag-fp16", "strongly-typed", "explicit-quantization"
    strongly_typed: bool      # NetworkDefinitionCreationFlag.STRONGLY_TYPED (always on in TRT 11)
    fp16_flag: bool           # BuilderFlag.FP16 (TensorRT 10 only)
    note: str


def precision_mode(trt_major: int, precision: str, onnx_precision: str, library: str = "") -> PrecisionMode:
    """Decide how to build ``precision`` ("fp32"/"fp16") from an ONNX model whose float weights
    are ``onnx_precision`` ("fp32", "fp16" or "mixed").

    TensorRT 10: fp16 from an fp32 export uses the FP16 builder flag (weak typing: TensorRT may
    pick fp16 kernels per layer); from an fp16 export, a strongly typed network keeps the export's
    types. TensorRT 11 removed the precision flags: every network is strongly typed, so fp16 needs
    an fp16 export (``scaleprof export --precision fp16``). ``library`` names, in the messages, a
    library that follows TensorRT 11 whatever its own version (TensorRT-RTX).
    """
    generation = library or f"TensorRT {trt_major}"
    if precision not in PRECISIONS:
        raise BadInput(f"TensorRT backend precision {precision!r}: choose {', '.join(PRECISIONS)}")
    if trt_major < 10:
        raise EnvironmentProblem(f"TensorRT {trt_major}.x is too old: scaleprof needs TensorRT 10 or 11 ({INSTALL_HINT})")
    if precision in QUANTIZED or onnx_precision in QUANTIZED:
        return _quantized_mode(trt_major, precision, onnx_precision, generation)
    low = onnx_precision in ("fp16", "mixed")
    if precision == "fp32":
        if low:
            raise BadInput(f"the ONNX model holds {onnx_precision} weights but fp32 was asked for: "
                           f"export with --precision fp32, or build with --precision fp16")
        if trt_major >= 11:
            return PrecisionMode("fp32", True, False, f"{generation}: strongly typed network from an fp32 export")
        return PrecisionMode("fp32", False, False, "TensorRT 10: fp32 network (TF32 allowed, TensorRT's default)")
    if low:
        return PrecisionMode("strongly-typed", True, False,
                             f"strongly typed network: fp16 comes from the {onnx_precision} ONNX export")
    if trt_major >= 11:
        raise BadInput(f"{generation} builds strongly typed networks only (it has no FP16 builder flag): "
                       "export the model with --precision fp16 and build that file")
    return PrecisionMode("builder-flag-fp16", False, True,
                         "TensorRT 10: BuilderFlag.FP16 on an fp32 export (TensorRT picks fp16 kernels per layer)")


def _quantized_mode(trt_major: int, precision: str, onnx_precision: str, generation: str) -> PrecisionMode:
    """int8/fp8 come from the QDQ file's Quantize/Dequantize pairs (explicit quantization): no
    builder flag; TensorRT fuses each pair into the op it surrounds."""
    if precision != onnx_precision:
        if onnx_precision in QUANTIZED:
            raise BadInput(f"the ONNX model is an {onnx_precision} QDQ file but {precision} was asked for: "
                           f"build it with --precision {onnx_precision}")
        raise BadInput(f"{precision} engines are built from an {precision} QDQ file: "
                       f"export the model with --precision {precision}")
    return PrecisionMode("explicit-quantization", trt_major >= 11, False,
                         f"{generation}: {precision} from the QDQ file's Quantize/Dequantize pairs "
                         "(explicit quantization)")


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


# --- cache keys, the timing cache and side files ---------------------------------------------

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


def timing_cache_path(gpu_name: str, trt_version: str, override: str | None = None) -> Path | None:
    """The persistent timing cache for this GPU model and TensorRT version (a timing cache is
    specific to both, TensorRT docs). $SCALEPROF_CACHE_DIR, else $XDG_CACHE_HOME/scaleprof,
    else ~/.cache/scaleprof."""
    if override:
        return Path(override).expanduser()

    base = user_cache_dir()                 # None (no usable HOME or cache variable): no timing cache
    if base is None:
        return None
    return base / "tensorrt" / f"timing-{slug(gpu_name, 'unknown')}-trt{slug(trt_version, 'unknown')}.cache"


def sidecar_paths(plan: Path) -> dict[str, Path]:
    """NVIDIA's engine explorer reads ``<engine>.graph.json`` and ``<engine>.profile.json`` beside
    the plan; ``<engine>.timing.json`` holds end-to-end times in trtexec's --exportTimes format;
    ``<engine>.layers.json`` the network's layers before fusion (network_layers)."""
    plan = Path(plan)
    return {kind: plan.with_name(f"{plan.name}.{kind}.json") for kind in ("graph", "profile", "timing", "layers")}
