"""The TensorRT backend (TensorRT 10 and 11), written against TensorRT's Python API.

Nothing here imports ``tensorrt`` at module level: ``import_tensorrt()`` is the only place, and
without TensorRT it raises one line saying how to install it. The pure parts (profile planning,
precision, cache keys, inspector / profile JSON, trtexec command lines) live in tensorrt_plan,
tensorrt_inspect and tensorrt_trtexec and are tested without a GPU.

Build (Python API): OnnxParser.parse_from_file (unsupported nodes reported with their ONNX
names), one optimisation profile per planned shape range, MemoryPoolType.WORKSPACE limit,
builder_optimization_level, ProfilingVerbosity.DETAILED, a persistent timing cache per GPU model
and TensorRT version, BuilderFlag.FP16 (TensorRT 10) or a strongly typed network (fp16 ONNX
export; always in TensorRT 11), build_serialized_network. Or the same through trtexec
(option ``trtexec``). The engine directory holds:

    engine.plan                 the serialized plan
    engine.plan.graph.json      IEngineInspector JSON (LayerInformationFormat.JSON)
    engine.plan.profile.json    per-layer times, trtexec --exportProfile format (after profiling)
    engine.plan.timing.json     end-to-end times, trtexec --exportTimes format (trtexec runs)
    onnx_nodes.json             the ONNX graph's node order (maps Myelin regions to nodes)
    manifest.json

NVIDIA's engine explorer opens ``<engine>.graph.json`` with ``<engine>.profile.json``.

Running: device buffers are torch CUDA tensors (no pycuda), set_input_shape /
set_tensor_address / execute_async_v3 on a torch stream, the optimisation profile chosen per
shape, the inference captured in a CUDA graph for end-to-end timing, CUDA events for timing,
and a separate execution context with an IProfiler for per-layer times.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from scaleprof.engines import tensorrt_trtexec as trtexec_mod
from scaleprof.engines.base import (Backend, BuildSpec, Engine, EngineManifest, LayerTrace,
                                    ShapePoint, ShapeRange)
from scaleprof.engines.registry import device_index
from scaleprof.engines.tensorrt_inspect import LayerResolver, LayerTimes, read_inspector, write_profile
from scaleprof.engines.tensorrt_plan import (INSTALL_HINT, PrecisionMode, is_dynamic,
                                             key_parts, onnx_float_precision, parse_version,
                                             plan_profiles, precision_mode, profile_dims,
                                             select_profile, sidecar_paths, symbolic_shape,
                                             timing_cache_path, torch_dtype_name, trt_options)
from scaleprof.core.files import write_atomic
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput, EnvironmentProblem


def _register_profile_resolver() -> None:
    """Plug TensorRT's naming rules into scaleprof.profile.mapping (importing this module, as
    get_backend('tensorrt') does, is enough)."""
    try:
        from scaleprof.engines.tensorrt_inspect import profile_resolver_class
        from scaleprof.profile.mapping import register_resolver
    except ImportError:
        return
    register_resolver("tensorrt", profile_resolver_class())


_register_profile_resolver()

PLAN_NAME = "engine.plan"
NODES_NAME = "onnx_nodes.json"
_LOGGERS: dict[int, object] = {}


def import_tensorrt():
    """The ``tensorrt`` module, or EnvironmentProblem with one line on how to install it."""
    try:
        import tensorrt as trt
    except Exception as err:            # ImportError, or a stub / missing libnvinfer failing at import
        reason = first_line(f"{type(err).__name__}: {err}", 120)
        raise EnvironmentProblem(f"TensorRT is not installed here ({reason}): {INSTALL_HINT}") from None
    if not hasattr(trt, "Builder"):
        raise EnvironmentProblem(f"the installed 'tensorrt' package is a stub without the runtime: {INSTALL_HINT}")
    return trt


def _logger(trt):
    """One ILogger for the process (TensorRT keeps the first logger it is given); it keeps
    warnings and errors so a failure can be reported in one line."""
    if id(trt) not in _LOGGERS:
        class _Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.messages: list[tuple[int, str]] = []

            def log(self, severity, msg):
                level = int(severity)
                if level <= 2:          # INTERNAL_ERROR 0, ERROR 1, WARNING 2
                    self.messages = self.messages[-99:] + [(level, str(msg))]

            def last_error(self) -> str:
                errors = [m for lvl, m in self.messages if lvl <= 1]
                return errors[-1] if errors else "no error message from TensorRT"

        _LOGGERS[id(trt)] = _Logger()
    return _LOGGERS[id(trt)]


def _profiler(trt, sink: LayerTimes):
    class _Profiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name, ms):
            sink.report(layer_name, ms)

    return _Profiler()


def _cuda_index(device: str) -> int:
    if not device.startswith("cuda"):
        raise BadInput(f"the TensorRT backend runs on NVIDIA GPUs: use --device cuda (got {device!r})")
    return device_index(device)


def ranges_to_json(r: ShapeRange) -> dict:
    return {k: {"batch": p.batch, "resolution": p.resolution}
            for k, p in (("min", r.min), ("opt", r.opt), ("max", r.max))}


def engine_profiles(manifest: EngineManifest) -> tuple[ShapeRange, ...]:
    """The engine's optimisation profiles in index order (extras['profiles']); () when static."""
    if "profiles" not in manifest.extras:
        return tuple(manifest.ranges)
    return tuple(ShapeRange(*(ShapePoint(**p[k]) for k in ("min", "opt", "max")))
                 for p in manifest.extras["profiles"])


# --- building through the Python API -------------------------------------------------------

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


def build_serialized(trt, onnx_path: Path, spec: BuildSpec, mode: PrecisionMode, *,
                     cache_bytes: bytes = b"", node_order=()) -> tuple[bytes, bytes, dict, tuple]:
    """Parse ``onnx_path`` and build a serialized plan with TensorRT's builder.

    Returns (plan, serialized timing cache, network input dims, planned profiles).
    ``trt`` is the tensorrt module (a parameter so the control flow is testable)."""
    opts = trt_options(spec)
    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if mode.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = parse_errors(parser, node_order)
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise EnvironmentProblem(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: {shown or logger.last_error()}")

    inputs = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        inputs[tensor.name] = tuple(int(d) for d in tensor.shape)

    config = builder.create_builder_config()
    if opts.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    config.builder_optimization_level = opts.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if mode.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)          # TensorRT 10 only (removed in 11)

    profiles: tuple[ShapeRange, ...] = ()
    if any(is_dynamic(d) for d in inputs.values()):
        profiles = plan_profiles(spec.shapes, spec.ranges, opts.profiles)
        for rng in profiles:
            profile = builder.create_optimization_profile()
            for name, dims in inputs.items():
                lo, opt, hi = profile_dims(dims, rng, name)
                profile.set_shape(name, lo, opt, hi)
            config.add_optimization_profile(profile)
    else:
        from scaleprof.engines.shapes import fits_model_input
        for name, dims in inputs.items():
            fits_model_input(dims, spec.shapes, spec.ranges, name)

    cache = config.create_timing_cache(cache_bytes or b"")
    if not config.set_timing_cache(cache, False):
        cache = config.create_timing_cache(b"")        # a cache from another GPU / version: start afresh
        config.set_timing_cache(cache, True)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EnvironmentProblem(f"TensorRT could not build an engine for {onnx_path.name}: {logger.last_error()}")
    new_cache = bytes(config.get_timing_cache().serialize())
    return bytes(plan), new_cache, inputs, profiles


def inspector_json(trt, engine) -> str:
    """IEngineInspector's JSON for ``engine``."""
    return engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)


# --- the backend ---------------------------------------------------------------------------

class TensorRTBackend(Backend):
    name = "tensorrt"
    install_hint = INSTALL_HINT

    def __init__(self):
        self._trtexec_versions: dict[str, str] = {}

    # host checks -------------------------------------------------------------------------
    @staticmethod
    def _runtime_importable() -> bool:
        try:
            import_tensorrt()
            return True
        except EnvironmentProblem:
            return False

    @staticmethod
    def _gpu_present() -> bool:
        try:
            import torch
            if torch.cuda.is_available():
                return True
        except Exception:
            pass
        return shutil.which("nvidia-smi") is not None

    def available(self) -> bool:
        """A GPU, and TensorRT's Python runtime or a trtexec on PATH."""
        return self._gpu_present() and (self._runtime_importable() or shutil.which("trtexec") is not None)

    def check_device(self, device: str) -> None:
        _cuda_index(device)

    def version(self) -> str:
        """TensorRT's Python runtime version; without it, that of the trtexec on PATH."""
        try:
            return import_tensorrt().__version__
        except EnvironmentProblem:
            trtexec = shutil.which("trtexec")
            if trtexec is None:
                raise
            return self.trtexec_version(trtexec)

    def trtexec_version(self, trtexec: str) -> str:
        if trtexec not in self._trtexec_versions:
            try:
                proc = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired) as err:
                raise EnvironmentProblem(f"could not run {trtexec}: {err}") from None
            self._trtexec_versions[trtexec] = trtexec_mod.parse_banner_version(proc.stdout + proc.stderr)
        return self._trtexec_versions[trtexec]

    def device_name(self, device: str) -> str:
        index = _cuda_index(device)
        try:
            import torch
            if torch.cuda.is_available():
                return torch.cuda.get_device_name(index)
        except Exception:
            pass
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", f"--id={index}"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout.strip()
            if out:
                return out.splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
        raise EnvironmentProblem(f"no NVIDIA GPU {device} here: the TensorRT backend needs one ({INSTALL_HINT})")

    @staticmethod
    def compute_capability(device: str) -> str:
        try:
            import torch
            major, minor = torch.cuda.get_device_capability(_cuda_index(device))
            return f"{major}.{minor}"
        except Exception:
            return ""

    def build_key_parts(self, spec: BuildSpec) -> dict:
        opts = trt_options(spec)
        if opts.trtexec:
            version, builder = self.trtexec_version(trtexec_mod.find_trtexec(opts.trtexec)), "trtexec"
        else:
            version, builder = self.version(), "python-api"
        return key_parts(spec, trt_version=version, gpu_name=self.device_name(spec.device),
                         compute_capability=self.compute_capability(spec.device), builder=builder)

    # build -------------------------------------------------------------------------------
    def build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> "TensorRTEngine":
        from scaleprof.core.onnx_file import dims_of, graph_inputs, load_model

        onnx_path, directory = Path(onnx_path), Path(directory)
        opts = trt_options(spec)
        gpu = self.device_name(spec.device)
        if opts.trtexec:
            trtexec = trtexec_mod.find_trtexec(opts.trtexec)
            version = self.trtexec_version(trtexec)
        else:
            trt = import_tensorrt()
            version = trt.__version__
        model = load_model(onnx_path, load_weights=False)
        node_order = tuple(n.name for n in model.graph.node)
        onnx_precision = onnx_float_precision(model)
        inputs = {i.name: dims_of(i) for i in graph_inputs(model)}
        del model
        mode = precision_mode(parse_version(version)[0], spec.precision, onnx_precision)

        directory.mkdir(parents=True, exist_ok=True)
        plan_path = directory / PLAN_NAME
        side = sidecar_paths(plan_path)
        cache_path = timing_cache_path(gpu, version, opts.timing_cache)
        started = time.perf_counter()
        if opts.trtexec:
            profiles = plan_profiles(spec.shapes, spec.ranges, opts.profiles) \
                if any(is_dynamic(d) for d in inputs.values()) else ()
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cmd = trtexec_mod.build_command(
                trtexec, onnx_path, plan_path, inputs=inputs, profiles=profiles, mode=mode,
                trt_major=parse_version(version)[0], opt_level=opts.opt_level,
                workspace_mib=opts.workspace_mib, timing_cache=cache_path, layer_info=side["graph"])
            trtexec_mod.run(cmd, log=directory / "trtexec-build.log")
            if not plan_path.is_file():
                raise EnvironmentProblem(f"trtexec reported success but wrote no plan ({plan_path})")
        else:
            cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
            plan, new_cache, inputs, profiles = build_serialized(
                trt, onnx_path, spec, mode, cache_bytes=cache_bytes, node_order=node_order)
            write_atomic(plan_path, plan)
            write_atomic(cache_path, new_cache)
            engine = trt.Runtime(_logger(trt)).deserialize_cuda_engine(plan)
            if engine is None:
                raise EnvironmentProblem(f"TensorRT built a plan it cannot load: {_logger(trt).last_error()}")
            side["graph"].write_text(inspector_json(trt, engine), encoding="utf-8")
            del engine
        build_seconds = time.perf_counter() - started
        (directory / NODES_NAME).write_text(json.dumps(list(node_order)), encoding="utf-8")

        graph_layers = None
        if side["graph"].is_file():
            graph_layers = len(read_inspector(side["graph"]).profile_layers(0))
        from scaleprof.engines.cache import draft_manifest

        # The cache fills in key, hashes and timings, and sets manifest.ranges to the requested
        # ranges: the engine's own profiles (their order is the profile index) live in extras.
        manifest = draft_manifest(
            self, spec, onnx_path, PLAN_NAME,
            builder="trtexec" if opts.trtexec else "python-api",
            trtexec=trtexec if opts.trtexec else None,
            tensorrt_version=version,
            profiles=[ranges_to_json(r) for r in profiles],
            precision_mode=mode.name,
            precision_note=mode.note,
            strongly_typed=mode.strongly_typed,
            onnx_precision=onnx_precision,
            builder_optimization_level=opts.opt_level,
            workspace_mib=opts.workspace_mib,
            profiling_verbosity="detailed",
            profile_mode=opts.profiles,
            timing_cache=str(cache_path),
            compute_capability=self.compute_capability(spec.device),
            inputs={n: [d if isinstance(d, int) else -1 for d in dims] for n, dims in inputs.items()},
            graph_json=side["graph"].name if side["graph"].is_file() else None,
            profile_json=side["profile"].name,
            onnx_nodes=NODES_NAME,
            engine_layers=graph_layers,
            build_seconds_tensorrt=round(build_seconds, 3))
        return TensorRTEngine(directory, manifest)

    def load(self, directory: Path, manifest: EngineManifest) -> "TensorRTEngine":
        return TensorRTEngine(Path(directory), manifest)


# --- the engine ----------------------------------------------------------------------------

class TensorRTRunner:
    """One prepared inference at a fixed shape on its own execution context. Calling it runs the
    captured CUDA graph once (plain execute_async_v3 when capture is not possible) between two
    CUDA events on the engine's stream and returns the elapsed milliseconds."""

    def __init__(self, engine: "TensorRTEngine", shape: ShapePoint, cuda_graph: bool = True):
        import torch

        self.shape = shape
        self._torch = torch
        self._stream = engine._stream
        self._context, self._tensors = engine._prepare(shape)
        handle = self._stream.cuda_stream
        with torch.cuda.stream(self._stream):
            # one plain run first: TensorRT finishes shape-dependent setup before any capture
            if not self._context.execute_async_v3(handle):
                raise EnvironmentProblem(f"TensorRT could not run the engine at {shape}")
        self._stream.synchronize()
        self._graph = None
        self.capture_error = ""
        if cuda_graph:
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self._stream):
                    self._context.execute_async_v3(handle)
                self._graph = graph
            except Exception as err:      # some engines cannot be captured; time them directly
                self.capture_error = f"{type(err).__name__}: {err}"[:200]
                self._graph = None
                torch.cuda.synchronize()
        self.timing_method = "cuda-graph+cuda-events" if self._graph is not None else "cuda-events"
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def __call__(self) -> float:
        with self._torch.cuda.stream(self._stream):
            self._start.record(self._stream)
            if self._graph is not None:
                self._graph.replay()
            else:
                self._context.execute_async_v3(self._stream.cuda_stream)
            self._end.record(self._stream)
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))


class TensorRTEngine(Engine):
    def __init__(self, directory: Path, manifest: EngineManifest):
        super().__init__(directory, manifest)
        self._trt = None
        self._engine = None
        self._stream = None
        self._run_context = None
        self._resolver: LayerResolver | None = None

    # lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        if self._engine is not None:
            return
        try:
            trt = import_tensorrt()
        except EnvironmentProblem as err:
            if self.manifest.extras.get("trtexec"):
                raise EnvironmentProblem(
                    f"{err}; to time this trtexec-built engine without it, run trtexec and "
                    f"`scaleprof ingest` its JSON") from None
            raise
        import torch

        if not self.artifact_path.is_file():
            raise EnvironmentProblem(f"engine plan missing: {self.artifact_path}")
        data = self.artifact_path.read_bytes()
        if self.manifest.artifact_sha256 and hashlib.sha256(data).hexdigest() != self.manifest.artifact_sha256:
            raise EnvironmentProblem(f"engine plan {self.artifact_path} is corrupt (checksum mismatch): rebuild it")
        here = trt.__version__
        if parse_version(here)[:2] != parse_version(self.manifest.backend_version)[:2]:
            raise EnvironmentProblem(f"engine built with TensorRT {self.manifest.backend_version}, "
                                     f"this host has {here}: rebuild it here")
        device = torch.device(self.manifest.device if self.manifest.device.startswith("cuda") else "cuda")
        torch.cuda.set_device(device)
        engine = trt.Runtime(_logger(trt)).deserialize_cuda_engine(data)
        if engine is None:
            raise EnvironmentProblem(f"TensorRT could not load {self.artifact_path.name} "
                                     f"(built for another GPU or TensorRT version?): {_logger(trt).last_error()}")
        self._trt, self._engine = trt, engine
        self._device = device
        self._stream = torch.cuda.Stream(device=device)

    def release(self) -> None:
        self._run_context = None
        self._engine = None
        self._stream = None
        self._trt = None

    def _require(self):
        if self._engine is None:
            self.load()
        return self._trt, self._engine

    # I/O ---------------------------------------------------------------------------------
    def _io(self):
        trt, engine = self._require()
        out = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            out.append((name, is_input, engine.get_tensor_dtype(name), tuple(engine.get_tensor_shape(name))))
        return out

    def input_shapes(self) -> dict[str, tuple]:
        return {name: symbolic_shape(dims) for name, is_input, _, dims in self._io() if is_input}

    def accepts(self, shape: ShapePoint) -> bool:
        return super().accepts(shape) or any(r.contains(shape) for r in engine_profiles(self.manifest))

    def _profile_index(self, shape: ShapePoint) -> int:
        profiles = engine_profiles(self.manifest)
        if not profiles:
            if shape not in self.manifest.shapes:
                raise BadInput(f"shape {shape} is not this static engine's shape "
                               f"({', '.join(map(str, self.manifest.shapes))})")
            return 0
        return select_profile(profiles, shape)

    def _prepare(self, shape: ShapePoint, context=None, inputs: dict | None = None):
        """Select the profile for ``shape``, set input shapes, bind torch CUDA buffers (random
        inputs unless ``inputs`` are given). Returns (context, {name: tensor})."""
        import torch

        trt, engine = self._require()
        context = context or engine.create_execution_context()
        if context is None:
            raise EnvironmentProblem(f"TensorRT could not create an execution context: {_logger(trt).last_error()}")
        index = self._profile_index(shape)
        if engine.num_optimization_profiles > 1 or index:
            if not context.set_optimization_profile_async(index, self._stream.cuda_stream):
                raise EnvironmentProblem(f"TensorRT refused optimisation profile {index} for {shape}")
        tensors = {}
        for name, is_input, dtype, dims in self._io():
            if not is_input:
                continue
            channels = dims[1] if len(dims) > 1 and dims[1] > 0 else 3
            want = shape.dims(channels)
            if not context.set_input_shape(name, want):
                raise BadInput(f"TensorRT refused input shape {want} for {name!r}")
            torch_dtype = getattr(torch, torch_dtype_name(dtype))
            if inputs is not None and name in inputs:
                t = torch.as_tensor(inputs[name]).to(device=self._device, dtype=torch_dtype).contiguous()
            elif torch_dtype.is_floating_point:
                t = torch.randn(want, device=self._device, dtype=torch_dtype)
            else:
                t = torch.zeros(want, device=self._device, dtype=torch_dtype)
            tensors[name] = t
        for name, is_input, dtype, _ in self._io():
            if is_input:
                continue
            out_shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in out_shape):
                raise EnvironmentProblem(f"output {name!r} has a data-dependent shape {out_shape}; not supported")
            tensors[name] = torch.empty(out_shape, device=self._device,
                                        dtype=getattr(torch, torch_dtype_name(dtype)))
        for name, t in tensors.items():
            if not context.set_tensor_address(name, t.data_ptr()):
                raise EnvironmentProblem(f"TensorRT refused the buffer for {name!r}")
        return context, tensors

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        trt, engine = self._require()
        first = next(iter(inputs.values()))
        dims = tuple(first.shape)
        if len(dims) != 4 or dims[2] != dims[3]:
            raise BadInput(f"input shape {dims} is not a square NCHW image batch")
        shape = ShapePoint(int(dims[0]), int(dims[2]))
        if self._run_context is None:
            self._run_context = engine.create_execution_context()
        context, tensors = self._prepare(shape, self._run_context, inputs)
        if not context.execute_async_v3(self._stream.cuda_stream):
            raise EnvironmentProblem(f"TensorRT could not run the engine: {_logger(trt).last_error()}")
        self._stream.synchronize()
        outputs = {}
        for name, is_input, _, _ in self._io():
            if not is_input:
                t = tensors[name]
                outputs[name] = (t.float() if t.dtype.is_floating_point and t.element_size() < 4 else t).cpu().numpy()
        return outputs

    def runner(self, shape: ShapePoint) -> TensorRTRunner:
        self._require()
        return TensorRTRunner(self, shape)

    # per-layer profile -------------------------------------------------------------------
    def resolver(self) -> LayerResolver:
        """Layer name -> ONNX nodes, from this engine's graph.json and ONNX node order."""
        if self._resolver is None:
            side = sidecar_paths(self.artifact_path)
            graph = read_inspector(side["graph"]) if side["graph"].is_file() else None
            nodes_file = self.directory / NODES_NAME
            order = json.loads(nodes_file.read_text()) if nodes_file.is_file() else ()
            self._resolver = LayerResolver(graph, order)
        return self._resolver

    def profile_layers(self, shape: ShapePoint, iterations: int, warmup: int = 3) -> LayerTrace:
        """Per-layer times from an IProfiler on a separate execution context (never the timed
        one: the profiler synchronises after each layer). Writes ``<engine>.profile.json`` in
        trtexec's --exportProfile format."""
        trt, engine = self._require()
        times = LayerTimes()
        context, _ = self._prepare(shape)
        profiler = _profiler(trt, times)           # held here: TensorRT calls back into it
        context.profiler = profiler
        handle = self._stream.cuda_stream
        for _ in range(warmup + max(1, int(iterations))):
            times.next_iteration()
            if not context.execute_async_v3(handle):
                raise EnvironmentProblem(f"TensorRT could not run the engine at {shape}: {_logger(trt).last_error()}")
            self._stream.synchronize()
        trace = times.trace(self.resolver(), skip=warmup)
        side = sidecar_paths(self.artifact_path)
        write_profile(trace, side["profile"])
        write_profile(trace, side["profile"].with_name(f"{self.artifact_path.name}.{shape}.profile.json"))
        del context, profiler
        return trace
