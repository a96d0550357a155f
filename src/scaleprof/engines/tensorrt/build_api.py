"""Building through TensorRT's Python API, one step per function (in the manner of Polygraphy's
loaders: each takes what the previous one made):

    parse_network       OnnxParser.parse_from_file into a network, strongly typed when the precision
                        mode says so; nodes the parser rejects are named with their ONNX names
    network_inputs      the network's input names and dims (-1 for dynamic)
    create_config       MemoryPoolType.WORKSPACE limit, builder_optimization_level,
                        ProfilingVerbosity.DETAILED, BuilderFlag.FP16 (TensorRT 10 only), the
                        compute capabilities to build for (TensorRT-RTX)
    add_profiles        one optimisation profile per planned shape range (static inputs: checked);
                        a profile the library rejects (-1) is one line naming it
    use_timing_cache    the persistent timing cache; one from another GPU or version starts afresh
    build_serialized    the steps above, then build_serialized_network, with the logger cleared
                        first and the network's layers and the builder's memory lines kept
    build_with_api      build_serialized, then the plan, the timing cache and the layer file written;
                        where the plan can be loaded here, the inspector's layer JSON and each
                        profile's device memory from the engine; else the same JSON from the
                        builder's own layer report (engine_layers); on request a second build
                        whose bytes are compared with the first (determinism, measured)

``trt`` is always a parameter, the module scaleprof.engines.tensorrt.library imported, so the
control flow is tested against a recording stand-in, and every library with TensorRT's API takes
the same path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scaleprof.core.files import write_atomic
from scaleprof.engines.base import BuildSpec, ShapeRange
from scaleprof.engines.shapes import fits_model_input
from scaleprof.engines.tensorrt.engine_layers import graph_document, parse_layer_report
from scaleprof.engines.tensorrt.library import logger_for
from scaleprof.engines.tensorrt.network import layers_document, network_layers
from scaleprof.engines.tensorrt.options import PrecisionMode, TrtOptions, trt_options
from scaleprof.engines.tensorrt.profiles import is_dynamic, plan_profiles, profile_dims
from scaleprof.errors import BadInput, EnvironmentProblem


def parse_errors(parser, node_order=()) -> list[str]:
    """OnnxParser errors as 'node NAME (OP): description' lines (TensorRT 10's IParserError has
    node_name() and node_operator(); older errors only a node index)."""
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        name = getattr(err, "node_name", lambda: "")() or ""
        op = getattr(err, "node_operator", lambda: "")() or ""
        index = err.node() if hasattr(err, "node") else -1
        if not name and 0 <= index < len(node_order):
            name = node_order[index]
        where = f"node {name!r}" + (f" ({op})" if op else "") if name else "model"
        lines.append(f"{where}: {err.desc()}")
    return lines


def parse_network(trt, builder, onnx_path: Path, mode: PrecisionMode, node_order=()):
    """(network, parser) for ``onnx_path``; the parser owns the weights, so it lives as long as the
    network. A file the parser rejects is bad input: one line naming the first offending nodes."""
    logger = logger_for(trt)
    flags = 0
    if mode.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = parse_errors(parser, node_order)
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise BadInput(f"{library_title(trt)} cannot parse {onnx_path.name}: "
                                 f"{shown or logger.last_error()}")
    return network, parser


def network_inputs(network) -> dict[str, tuple[int, ...]]:
    inputs = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        inputs[tensor.name] = tuple(int(d) for d in tensor.shape)
    return inputs


def create_config(trt, builder, opts: TrtOptions, mode: PrecisionMode, targets: tuple[str, ...] = ()):
    """``targets``: ComputeCapability member names (TensorRT-RTX); () leaves the library's choice."""
    config = builder.create_builder_config()
    if opts.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    config.builder_optimization_level = opts.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if mode.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)          # TensorRT 10 only (removed in 11)
    if targets:
        config.num_compute_capabilities = len(targets)
        for index, target in enumerate(targets):
            config.set_compute_capability(getattr(trt.ComputeCapability, target), index)
    return config


def add_profiles(trt, builder, config, inputs: dict, spec: BuildSpec, opts: TrtOptions) -> tuple[ShapeRange, ...]:
    """The planned optimisation profiles, added to ``config`` in index order; () for static inputs,
    whose dims must then fit every requested shape."""
    if not any(is_dynamic(d) for d in inputs.values()):
        for name, dims in inputs.items():
            fits_model_input(dims, spec.shapes, spec.ranges, name)
        return ()
    profiles = plan_profiles(spec.shapes, spec.ranges, opts.profiles)
    add_ranges(trt, builder, config, inputs, profiles)
    return profiles


def add_ranges(trt, builder, config, inputs: dict, profiles: tuple[ShapeRange, ...]) -> None:
    """One optimisation profile per range; add_optimization_profile answers -1 for one it rejects."""
    for index, rng in enumerate(profiles):
        profile = builder.create_optimization_profile()
        for name, dims in inputs.items():
            lo, opt, hi = profile_dims(dims, rng, name)
            profile.set_shape(name, lo, opt, hi)
        if config.add_optimization_profile(profile) < 0:
            raise BadInput(f"{library_title(trt)} rejected optimisation profile {index} "
                           f"({rng.min}..{rng.opt}..{rng.max}): {logger_for(trt).last_error()}")


def use_timing_cache(config, cache_bytes: bytes) -> None:
    cache = config.create_timing_cache(cache_bytes or b"")
    if not config.set_timing_cache(cache, False):
        cache = config.create_timing_cache(b"")        # a cache from another GPU / version: start afresh
        config.set_timing_cache(cache, True)


@dataclass(frozen=True)
class BuiltPlan:
    """What one build through the Python API made."""

    plan: bytes
    timing_cache: bytes | None          # None: built without one
    inputs: dict                        # network input name -> dims (-1 for dynamic)
    profiles: tuple[ShapeRange, ...]    # in profile-index order
    layers: list                        # the network's layers before fusion (network_layers)
    activation_bytes: list              # per profile, as the builder logged it ([] when it did not)
    weights_bytes: int | None = None    # as the builder logged it
    layer_report: str | None = None     # the builder's 'Layers:' message (engine_layers)


def build_serialized(trt, onnx_path: Path, spec: BuildSpec, mode: PrecisionMode, *, cache_bytes: bytes | None = b"",
                     node_order=(), targets: tuple[str, ...] = ()) -> BuiltPlan:
    """Parse ``onnx_path`` and build a serialized plan with the library's builder. ``cache_bytes``
    None: no timing cache (a library without one). ``targets``: see create_config."""
    opts = trt_options(spec)
    logger = logger_for(trt)
    logger.book.reset()                                # this build's messages only
    builder = trt.Builder(logger)
    network, _parser = parse_network(trt, builder, onnx_path, mode, node_order)
    inputs = network_inputs(network)
    config = create_config(trt, builder, opts, mode, targets)
    profiles = add_profiles(trt, builder, config, inputs, spec, opts)
    if cache_bytes is not None:
        use_timing_cache(config, cache_bytes)
    layers = network_layers(network)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise build_failure(trt, onnx_path, logger.last_error())
    new_cache = bytes(config.get_timing_cache().serialize()) if cache_bytes is not None else None
    book = logger.book
    return BuiltPlan(bytes(plan), new_cache, inputs, profiles, layers, book.activation_bytes(),
                     book.weights_bytes, book.layer_report)


# The builder cannot compile an operator for a GPU target (e.g. fp32 GEMMs for Turing, SM75): the
# request is what is wrong, not the host.
_TARGET_REFUSED = re.compile(r"Cannot compile operation '(?P<node>[^']*)' for (?P<arch>\w+) \(SM(?P<sm>\d+)\): "
                             r"(?P<why>[^.]*)")


# ... or a data type for targets without it (fp8 before Ada, sm89)
_TYPE_REFUSED = re.compile(r"Cannot compile for target\(s\) (?P<sms>[sm\d, ]+), because (?P<why>[^.]*)")


def build_failure(trt, onnx_path: Path, cause: str) -> Exception:
    def cc(sm: str) -> str:
        return f"{sm[:-1]}.{sm[-1]}"

    if m := _TARGET_REFUSED.search(cause):
        return BadInput(f"{library_title(trt)} cannot build node {m['node']!r} for compute capability "
                        f"{cc(m['sm'])} ({m['arch']}): {m['why']}; drop {cc(m['sm'])} from compute_capabilities")
    if m := _TYPE_REFUSED.search(cause):
        targets = ", ".join(cc(sm) for sm in re.findall(r"sm(\d+)", m["sms"]))
        return BadInput(f"{library_title(trt)} cannot build {onnx_path.name} for compute capability {targets}: "
                        f"{m['why']}; drop {targets} from compute_capabilities")
    return EnvironmentProblem(f"{library_title(trt)} could not build an engine for {onnx_path.name}: {cause}")


def library_title(trt) -> str:
    """'TensorRT 10.8.0.43' or 'TensorRT-RTX 1.7.1.116', for messages."""
    title = "TensorRT-RTX" if getattr(trt, "__name__", "") == "tensorrt_rtx" else "TensorRT"
    return f"{title} {getattr(trt, '__version__', '?')}"


def inspector_json(trt, engine) -> str:
    """IEngineInspector's JSON for ``engine``."""
    return engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)


def inspect_plan(trt, plan: bytes, graph_path: Path) -> dict:
    """Load the new plan (it needs the GPU): the inspector's layer JSON to ``graph_path``, and each
    profile's device memory as the engine answers it, for the manifest."""
    logger = logger_for(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise EnvironmentProblem(f"{library_title(trt)} built a plan it cannot load: {logger.last_error()}")
    graph_path.write_text(inspector_json(trt, engine), encoding="utf-8")
    per_profile = getattr(engine, "get_device_memory_size_for_profile_v2", None) \
        or getattr(engine, "get_device_memory_size_for_profile", None)
    if per_profile is None:
        return {}
    return {"activation_bytes": [int(per_profile(k)) for k in range(engine.num_optimization_profiles)],
            "activation_source": "engine (device memory per profile)"}


def build_with_api(trt, onnx_path: Path, side: dict, plan_path: Path, spec: BuildSpec, mode: PrecisionMode, *,
                   timing_cache: Path | None, node_order=(), targets: tuple[str, ...] = (),
                   load_plan: bool = True) -> tuple[BuiltPlan, dict]:
    """Build ``plan_path``, update ``timing_cache`` (None: none is used), write the layer file and
    the inspector's layer JSON (``side``: sidecar_paths of the plan): from the loaded engine with
    ``load_plan``, else from the builder's layer report. Returns the build and the manifest's
    memory and determinism figures."""
    cache_bytes = None
    if timing_cache is not None:
        cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    built = build_serialized(trt, onnx_path, spec, mode, cache_bytes=cache_bytes, node_order=node_order,
                             targets=targets)
    write_atomic(plan_path, built.plan)
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(timing_cache, built.timing_cache)
    write_atomic(side["layers"], layers_document(built.layers, trt.__name__, trt.__version__))
    figures = {"activation_bytes": built.activation_bytes, "activation_source": "builder log",
               "weights_bytes": built.weights_bytes}
    if load_plan:
        figures.update(inspect_plan(trt, built.plan, side["graph"]))
    elif built.layer_report:
        write_atomic(side["graph"], graph_document(parse_layer_report(built.layer_report)))
    if trt_options(spec).determinism == "check":
        again = build_serialized(trt, onnx_path, spec, mode, cache_bytes=cache_bytes, node_order=node_order,
                                 targets=targets)
        figures["deterministic"] = again.plan == built.plan
    return built, figures
