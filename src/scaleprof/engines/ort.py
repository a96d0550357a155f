"""ONNX Runtime backend ("ort"), the embedded default.

Engine = the optimised, serialised model ONNX Runtime writes at session creation
(``SessionOptions.optimized_model_filepath`` at the chosen graph optimisation level) plus the
manifest. Loading it disables further optimisation, so the node names in the profiler's trace are
exactly the node names of the saved optimised model (``manifest.extras["optimized_model"]``):
``OrtEngine.layer_resolver`` maps them back to the exported nodes through that file
(scaleprof.engines.ort_profile, which also parses the profiler's trace).

Execution providers: CPU here; on ``--device cuda`` (needs onnxruntime-gpu and a GPU) the CUDA EP,
or with option ``ep=tensorrt`` the TensorRT EP (which compiles its own engines at load time, cached
in the engine directory's ``trt_cache/``). Options (``BuildSpec.options``):
    opt_level   disable | basic | extended | all (default all; basic under the TensorRT EP, since
                ORT cannot serialise TensorRT-compiled nodes and TensorRT fuses by itself)
    ep          auto | cpu | cuda | tensorrt (auto: cpu on cpu, cuda on cuda)

Precision comes from the ONNX file's own types (export with --precision fp16 for an fp16 engine, or
int8 for a QDQ file: the CPU EP fuses Q/DQ pairs into integer kernels where it has one, and the
manifest's ``layer_precisions``/``conv_precisions`` say how many nodes of the optimised graph run in
int8, in float and as separate Q/DQ conversions); only the TensorRT EP can lower an fp32 model to
fp16 by itself.

Timing (Runner): IO binding with inputs placed on the device once, outside the timed region;
``time.perf_counter`` around ``run_with_iobinding``; on CUDA the call ends with
``synchronize_outputs()`` so the interval covers the GPU work ("perf_counter+cuda-sync").

Layer profile: ``SessionOptions.enable_profiling`` writes ORT's Chrome-trace JSON; each
``<node>_kernel_time`` event (``dur`` in microseconds, ``args.op_name``) becomes one time of a
LayerEvent, grouped per ``model_run``. Caveat: on the CUDA EP these are host-side intervals around
each kernel's launch, not GPU execution time (ORT reports device times only in CUPTI builds).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from scaleprof.core.onnx_file import load_model, quantized_precision
from scaleprof.core.text import first_line
from scaleprof.engines.anchors import OnnxGraph
from scaleprof.engines.base import Backend, BuildSpec, Engine, EngineManifest, LayerTrace, ShapePoint
from scaleprof.engines.cache import draft_manifest
from scaleprof.engines.devices import cuda_present, device_index, name_of_device
from scaleprof.engines.ort_profile import OrtResolver, layer_precisions, parse_profile
from scaleprof.engines.shapes import check_accepts, covering_range
from scaleprof.errors import BadInput, EnvironmentProblem

ARTIFACT = "model.optimized.onnx"
GPU_HINT = "pip install 'scaleprof[gpu]' (onnxruntime-gpu) on a host with an NVIDIA GPU"
OPT_LEVELS = ("disable", "basic", "extended", "all")
EPS = ("auto", "cpu", "cuda", "tensorrt")
_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _ort():
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)    # errors only, for the process-wide logger too
    return onnxruntime


def _level(name: str):
    ort = _ort()
    return {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[name]


def checked_session(path: Path, so, providers: list):
    """An InferenceSession that really runs on the first requested provider: ONNX Runtime falls back
    to the CPU with only a warning when a GPU provider fails to load (missing CUDA/cuDNN libraries)."""
    session = _ort().InferenceSession(str(path), so, providers=providers)
    wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
    if wanted not in session.get_providers():
        raise EnvironmentProblem(f"ONNX Runtime could not start {wanted} (it fell back to "
                                 f"{', '.join(session.get_providers())}): check the CUDA and cuDNN libraries")
    return session


class OrtBackend(Backend):
    name = "ort"                   # install hint: registry.BACKENDS

    def available(self) -> bool:
        try:
            _ort()
        except ImportError:
            return False
        return True

    def version(self) -> str:
        return _ort().__version__

    def check_device(self, device: str) -> None:
        if device == "cpu":
            return
        if "CUDAExecutionProvider" not in _ort().get_available_providers():
            raise EnvironmentProblem(f"ONNX Runtime here has no CUDA execution provider: {GPU_HINT}")
        if not cuda_present(device):
            raise EnvironmentProblem(f"no GPU {device} is visible on this host")

    def device_name(self, device: str) -> str:
        return name_of_device(device)

    def build_key_parts(self, spec: BuildSpec) -> dict:
        ep, level = resolve_options(spec)
        return {"ep": ep, "opt_level": level}

    def build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> Engine:
        ep, level = resolve_options(spec)
        so = session_options(spec.threads, level)
        so.optimized_model_filepath = str(Path(directory) / ARTIFACT)
        # Optimise for the target device, but never with a compiling EP (its nodes cannot be saved).
        providers = providers_for("cuda" if ep == "tensorrt" else ep, spec.device, spec.precision, directory)
        try:
            session = checked_session(onnx_path, so, providers)
        except EnvironmentProblem:
            raise
        except Exception as err:   # ORT raises its own Fail/InvalidGraph/NotImplemented types
            raise BadInput(f"ONNX Runtime cannot load {onnx_path}: {first_line(err)}") from None
        inputs = session.get_inputs()
        input_type = inputs[0].type
        float_precision = "fp16" if input_type == "tensor(float16)" else "fp32"
        model_precision = quantized_precision(load_model(onnx_path, load_weights=False)) or float_precision
        if model_precision != spec.precision and ep != "tensorrt":
            raise BadInput(f"{onnx_path} is an {model_precision} model; ONNX Runtime runs a model in its own "
                           f"precision: export it with --precision {spec.precision} for an {spec.precision} engine")
        del session
        ran = layer_precisions(_onnx().load(str(Path(directory) / ARTIFACT), load_external_data=False),
                               float_precision)
        manifest = draft_manifest(self, spec, onnx_path, ARTIFACT, optimized_model=ARTIFACT, ep=ep,
                                  graph_optimization_level=level, input=inputs[0].name, input_type=input_type,
                                  model_precision=model_precision, layer_precisions=ran["layer_precisions"],
                                  conv_precisions=ran["conv_precisions"])
        return OrtEngine(directory, manifest)

    def load(self, directory: Path, manifest: EngineManifest) -> Engine:
        return OrtEngine(directory, manifest)


def _onnx():
    import onnx

    return onnx


def resolve_options(spec: BuildSpec) -> tuple[str, str]:
    unknown = set(dict(spec.options)) - {"ep", "opt_level"}
    if unknown:
        raise BadInput(f"unknown ort option(s) {', '.join(sorted(unknown))}: ort takes ep and opt_level")
    ep = str(spec.option("ep", "auto"))
    if ep not in EPS:
        raise BadInput(f"unknown ort execution provider {ep!r}: choose one of {', '.join(EPS)}")
    if ep == "auto":
        ep = "cpu" if spec.device == "cpu" else "cuda"
    if (ep == "cpu") != (spec.device == "cpu"):
        raise BadInput(f"execution provider {ep!r} does not run on device {spec.device!r}")
    if ep == "tensorrt" and "TensorrtExecutionProvider" not in _ort().get_available_providers():
        raise EnvironmentProblem(f"ONNX Runtime here has no TensorRT execution provider: {GPU_HINT}")
    level = str(spec.option("opt_level", "basic" if ep == "tensorrt" else "all"))
    if level not in OPT_LEVELS:
        raise BadInput(f"unknown graph optimisation level {level!r}: choose one of {', '.join(OPT_LEVELS)}")
    return ep, level


def session_options(threads: int | None, level: str, profile_prefix: str | None = None):
    so = _ort().SessionOptions()
    so.graph_optimization_level = _level(level)
    so.intra_op_num_threads = threads or 0        # 0: ORT's default (one per physical core)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3                     # errors only: no NCHWc serialisation warning
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


def providers_for(ep: str, device: str, precision: str, directory: Path) -> list:
    if ep == "cpu":
        return ["CPUExecutionProvider"]
    ort = _ort()
    if hasattr(ort, "preload_dlls"):  # onnxruntime-gpu >= 1.21: CUDA/cuDNN from the nvidia-* wheels torch uses
        ort.preload_dlls()
    cuda = ("CUDAExecutionProvider", {"device_id": device_index(device)})
    if ep == "cuda":
        return [cuda, "CPUExecutionProvider"]
    trt = ("TensorrtExecutionProvider", {
        "device_id": device_index(device),
        "trt_fp16_enable": precision == "fp16",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(Path(directory) / "trt_cache"),
    })
    return [trt, cuda, "CPUExecutionProvider"]


class OrtEngine(Engine):
    def __init__(self, directory: Path, manifest: EngineManifest):
        super().__init__(directory, manifest)
        self.session = None

    @property
    def optimized_model_path(self) -> Path:
        return self.directory / self.manifest.extras.get("optimized_model", self.manifest.artifact)

    def _session(self, profile_prefix: str | None = None):
        m = self.manifest
        ep = m.extras.get("ep", "cpu")
        providers = providers_for(ep, m.device, m.precision, self.directory)
        if ep == "tensorrt":
            shapes = list(m.shapes) + [p for r in m.ranges for p in (r.min, r.opt, r.max)]
            name = m.extras.get("input", "input")
            rng = covering_range(shapes, m.ranges[0].opt if m.ranges else max(m.shapes))
            providers[0][1].update(trt_profile_min_shapes=f"{name}:{rng.min}",
                                   trt_profile_opt_shapes=f"{name}:{rng.opt}",
                                   trt_profile_max_shapes=f"{name}:{rng.max}")
        # The artifact is already optimised: optimising again could rename nodes.
        so = session_options(m.threads, "disable", profile_prefix)
        try:
            return checked_session(self.artifact_path, so, providers)
        except EnvironmentProblem:
            raise
        except Exception as err:
            raise EnvironmentProblem(f"ONNX Runtime cannot load engine {self.directory}: {first_line(err)}") from None

    def load(self) -> None:
        if self.session is None:
            self.session = self._session()

    def release(self) -> None:
        self.session = None

    def layer_resolver(self, graph: OnnxGraph) -> OrtResolver:
        """ONNX Runtime's rules, with the optimised model this engine runs where it was saved."""
        optimised = self.optimized_model_path
        return OrtResolver(graph, OnnxGraph(optimised) if optimised.is_file() else None)

    def input_shapes(self) -> dict[str, tuple]:
        self.load()
        return {i.name: tuple(i.shape) for i in self.session.get_inputs()}

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        self.load()
        feed = {k: _to_numpy(v) for k, v in inputs.items()}
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feed)))

    def make_inputs(self, shape: ShapePoint, seed: int = 0) -> dict[str, np.ndarray]:
        check_accepts(self, shape)
        self.load()
        rng = np.random.default_rng(seed)
        return {i.name: rng.standard_normal(shape.dims(), dtype=np.float32).astype(_NP_TYPES.get(i.type, np.float32))
                for i in self.session.get_inputs()}

    def runner(self, shape: ShapePoint) -> "OrtRunner":
        inputs = self.make_inputs(shape)
        return OrtRunner(self.session, shape, inputs, self.manifest.device)

    def profile_layers(self, shape: ShapePoint, iterations: int, warmup: int = 3,
                       keep_trace: Path | None = None) -> LayerTrace:
        """``keep_trace``: also copy ORT's raw Chrome-trace JSON to this path."""
        if iterations <= 0:
            raise BadInput(f"iterations must be positive, got {iterations}")
        inputs = self.make_inputs(shape)
        with tempfile.TemporaryDirectory(prefix="scaleprof-ort-profile-") as tmp:
            session = self._session(profile_prefix=str(Path(tmp) / "ort_profile"))
            runner = OrtRunner(session, shape, inputs, self.manifest.device)
            for _ in range(warmup + iterations):
                runner()
            trace_path = session.end_profiling()
            events = json.loads(Path(trace_path).read_text())
            if keep_trace is not None:
                shutil.copyfile(trace_path, keep_trace)
        return LayerTrace(parse_profile(events, iterations), iterations, "onnxruntime")


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):           # a torch tensor
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value)


class OrtRunner:
    """One timed inference through IO binding; inputs live on the engine's device already."""

    def __init__(self, session, shape: ShapePoint, inputs: dict[str, np.ndarray], device: str):
        ort = _ort()
        self.shape = shape
        self.session = session
        self.binding = session.io_binding()
        self.on_cuda = device != "cpu"
        self.timing_method = "perf_counter+cuda-sync" if self.on_cuda else "perf_counter"
        kind, index = ("cuda", device_index(device)) if self.on_cuda else ("cpu", 0)
        self._values = {}                      # keep device copies alive as long as the binding
        for name, array in inputs.items():
            value = ort.OrtValue.ortvalue_from_numpy(array, kind, index)
            self._values[name] = value
            self.binding.bind_ortvalue_input(name, value)
        for out in session.get_outputs():
            self.binding.bind_output(out.name, kind, index)
        if self.on_cuda:
            self.binding.synchronize_inputs()

    def __call__(self) -> float:
        start = time.perf_counter()
        self.session.run_with_iobinding(self.binding)
        if self.on_cuda:
            self.binding.synchronize_outputs()
        return (time.perf_counter() - start) * 1e3
