"""Building through TensorRT's Python API, one step per function (in the manner of Polygraphy's
loaders: each takes what the previous one made):

    parse_network       OnnxParser.parse_from_file into a network, strongly typed when the precision
                        mode says so; nodes the parser rejects are named with their ONNX names
    network_inputs      the network's input names and dims (-1 for dynamic)
    create_config       MemoryPoolType.WORKSPACE limit, builder_optimization_level,
                        ProfilingVerbosity.DETAILED, BuilderFlag.FP16 (TensorRT 10 only)
    add_profiles        one optimisation profile per planned shape range (static inputs: checked)
    use_timing_cache    the persistent timing cache; one from another GPU or version starts afresh
    build_serialized    the steps above, then build_serialized_network
    build_with_api      build_serialized, then the plan, the timing cache and the inspector's
                        layer JSON written beside it

``trt`` is always a parameter, the module scaleprof.engines.tensorrt.library imported, so the
control flow is tested against a recording stand-in, and every library with TensorRT's API takes
the same path.
"""

from __future__ import annotations

from pathlib import Path

from scaleprof.core.files import write_atomic
from scaleprof.engines.base import BuildSpec, ShapeRange
from scaleprof.engines.shapes import fits_model_input
from scaleprof.engines.tensorrt.library import logger_for
from scaleprof.engines.tensorrt.options import PrecisionMode, TrtOptions, trt_options
from scaleprof.engines.tensorrt.profiles import is_dynamic, plan_profiles, profile_dims
from scaleprof.errors import EnvironmentProblem


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
    network. A file the parser rejects is one line naming the first offending nodes."""
    logger = logger_for(trt)
    flags = 0
    if mode.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = parse_errors(parser, node_order)
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise EnvironmentProblem(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: "
                                 f"{shown or logger.last_error()}")
    return network, parser


def network_inputs(network) -> dict[str, tuple[int, ...]]:
    inputs = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        inputs[tensor.name] = tuple(int(d) for d in tensor.shape)
    return inputs


def create_config(trt, builder, opts: TrtOptions, mode: PrecisionMode):
    config = builder.create_builder_config()
    if opts.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    config.builder_optimization_level = opts.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if mode.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)          # TensorRT 10 only (removed in 11)
    return config


def add_profiles(builder, config, inputs: dict, spec: BuildSpec, opts: TrtOptions) -> tuple[ShapeRange, ...]:
    """The planned optimisation profiles, added to ``config`` in index order; () for static inputs,
    whose dims must then fit every requested shape."""
    if not any(is_dynamic(d) for d in inputs.values()):
        for name, dims in inputs.items():
            fits_model_input(dims, spec.shapes, spec.ranges, name)
        return ()
    profiles = plan_profiles(spec.shapes, spec.ranges, opts.profiles)
    for rng in profiles:
        profile = builder.create_optimization_profile()
        for name, dims in inputs.items():
            lo, opt, hi = profile_dims(dims, rng, name)
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    return profiles


def use_timing_cache(config, cache_bytes: bytes) -> None:
    cache = config.create_timing_cache(cache_bytes or b"")
    if not config.set_timing_cache(cache, False):
        cache = config.create_timing_cache(b"")        # a cache from another GPU / version: start afresh
        config.set_timing_cache(cache, True)


def build_serialized(trt, onnx_path: Path, spec: BuildSpec, mode: PrecisionMode, *,
                     cache_bytes: bytes | None = b"", node_order=()) -> tuple[bytes, bytes | None, dict, tuple]:
    """Parse ``onnx_path`` and build a serialized plan with TensorRT's builder.

    Returns (plan, serialized timing cache, network input dims, planned profiles). ``cache_bytes``
    None: no timing cache (a library without one), and None comes back in its place."""
    opts = trt_options(spec)
    logger = logger_for(trt)
    builder = trt.Builder(logger)
    network, _parser = parse_network(trt, builder, onnx_path, mode, node_order)
    inputs = network_inputs(network)
    config = create_config(trt, builder, opts, mode)
    profiles = add_profiles(builder, config, inputs, spec, opts)
    if cache_bytes is not None:
        use_timing_cache(config, cache_bytes)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EnvironmentProblem(f"TensorRT could not build an engine for {onnx_path.name}: {logger.last_error()}")
    new_cache = bytes(config.get_timing_cache().serialize()) if cache_bytes is not None else None
    return bytes(plan), new_cache, inputs, profiles


def inspector_json(trt, engine) -> str:
    """IEngineInspector's JSON for ``engine``."""
    return engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)


def build_with_api(trt, onnx_path: Path, plan_path: Path, graph_path: Path, spec: BuildSpec,
                   mode: PrecisionMode, *, timing_cache: Path | None, node_order=()) -> tuple[dict, tuple]:
    """Build ``plan_path``, update ``timing_cache`` (None: none is used) and write the inspector's
    layer JSON to ``graph_path``. Returns (network input dims, planned profiles)."""
    cache_bytes = None
    if timing_cache is not None:
        cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    plan, new_cache, inputs, profiles = build_serialized(trt, onnx_path, spec, mode, cache_bytes=cache_bytes,
                                                         node_order=node_order)
    write_atomic(plan_path, plan)
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(timing_cache, new_cache)
    logger = logger_for(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise EnvironmentProblem(f"TensorRT built a plan it cannot load: {logger.last_error()}")
    graph_path.write_text(inspector_json(trt, engine), encoding="utf-8")
    return inputs, profiles
