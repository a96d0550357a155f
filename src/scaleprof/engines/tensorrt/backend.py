"""The TensorRT backend: host checks, cache-key parts, and the build, through TensorRT's Python API
(scaleprof.engines.tensorrt.build_api) or through trtexec (option ``trtexec``,
scaleprof.engines.tensorrt.trtexec). Both write the same engine directory:

    engine.plan                 the serialized plan
    engine.plan.graph.json      IEngineInspector JSON (LayerInformationFormat.JSON); where the plan
                                is not loaded, the same from the builder's layer report
    engine.plan.profile.json    per-layer times, trtexec --exportProfile format (after profiling)
    engine.plan.timing.json     end-to-end times, trtexec --exportTimes format (trtexec runs)
    engine.plan.layers.json     the network's layers before fusion (Python-API builds)
    onnx_nodes.json             the ONNX graph's node order (maps Myelin regions to nodes)
    manifest.json               with the engine's layers after fusion (ONNX origins, tactics, data
                                types), weights and activation memory per optimisation profile,
                                the GPU targets built, and determinism when measured

``TensorRTBackend`` is parameterised by the library that provides TensorRT's API
(``library``, scaleprof.engines.tensorrt.library): a backend for another such library is a
subclass that names it and its backend name, plus a line in scaleprof.engines.backends.BACKENDS.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from scaleprof.core.onnx_file import dims_of, graph_inputs, load_model, quantized_precision, quantized_types
from scaleprof.engines.base import Backend, BuildSpec, EngineManifest, ShapeRange
from scaleprof.engines.cache import draft_manifest
from scaleprof.engines.devices import compute_capability, device_index, gpu_name, gpu_present
from scaleprof.engines.tensorrt import trtexec as trtexec_tool
from scaleprof.engines.tensorrt.build_api import build_with_api
from scaleprof.engines.tensorrt.engine import TensorRTEngine
from scaleprof.engines.tensorrt.engine_layers import layer_rows, layers_per_profile
from scaleprof.engines.tensorrt.inspector import read_inspector
from scaleprof.engines.tensorrt.library import TENSORRT, TensorRTLibrary, import_library, library_importable
from scaleprof.engines.tensorrt.network import check_gpu_memory, precision_extras
from scaleprof.engines.tensorrt.options import (
    NODES_NAME,
    PLAN_NAME,
    PrecisionMode,
    TrtOptions,
    key_parts,
    onnx_float_precision,
    precision_mode,
    sidecar_paths,
    timing_cache_path,
    trt_options,
)
from scaleprof.engines.tensorrt.profiles import is_dynamic, plan_profiles, profile_to_json
from scaleprof.errors import BadInput, EnvironmentProblem


@dataclass(frozen=True)
class OnnxFacts:
    """What a TensorRT build needs to know of the ONNX file before building."""

    node_order: tuple[str, ...]       # node names in graph order (parser errors, Myelin regions)
    precision: str                    # "int8"/"fp8" for a QDQ file, else its float weights: "fp32", "fp16", "mixed"
    inputs: dict                      # input name -> dims (ints, or strings for dynamic dims)


def read_onnx_facts(onnx_path: Path) -> OnnxFacts:
    model = load_model(onnx_path, load_weights=False)
    if "uint8" in quantized_types(model):
        raise BadInput(f"{onnx_path} quantizes activations to uint8: TensorRT's explicit quantization takes "
                       "symmetric int8 only (export with --int8-activations int8)")
    return OnnxFacts(tuple(n.name for n in model.graph.node), quantized_precision(model) or onnx_float_precision(model),
                     {i.name: dims_of(i) for i in graph_inputs(model)})


@dataclass(frozen=True)
class BuildPlan:
    """Everything one build settles before it starts."""

    onnx_path: Path
    directory: Path
    spec: BuildSpec
    opts: TrtOptions
    version: str                      # of the library or trtexec that builds
    api_generation: int               # whose TensorRT semantics apply (10, 11)
    mode: PrecisionMode
    facts: OnnxFacts
    timing_cache: Path | None         # None: the library keeps none

    @property
    def plan_path(self) -> Path:
        return self.directory / PLAN_NAME

    @property
    def side_files(self) -> dict[str, Path]:
        return sidecar_paths(self.plan_path)


def determinism_note(deterministic: bool | None) -> str:
    if deterministic is None:
        return "not measured (--option determinism=check builds twice and compares the bytes)"
    return f"measured: a second build gave {'the same' if deterministic else 'other'} bytes"


class TensorRTBackend(Backend):
    name = "tensorrt"
    library: TensorRTLibrary = TENSORRT

    @property
    def install_hint(self) -> str:
        return self.library.install_hint

    # host checks -------------------------------------------------------------------------
    def trtexec_on_path(self) -> str | None:
        return shutil.which("trtexec") if self.library.trtexec else None

    def available(self) -> bool:
        """A GPU, and the library's Python runtime or a trtexec on PATH."""
        return gpu_present() and (library_importable(self.library) or self.trtexec_on_path() is not None)

    def unavailable_reason(self) -> str:
        """Why available() is False, in one line: the library missing, or no GPU for it."""
        if library_importable(self.library) or self.trtexec_on_path():
            return (f"no NVIDIA GPU here: {self.library.title} is installed, but builds and runs its engines "
                    f"on a GPU (--backend tensorrt-rtx builds without one)")
        return self.install_hint

    def check_device(self, device: str) -> None:
        self.cuda_index(device)

    def cuda_index(self, device: str) -> int:
        if not device.startswith("cuda"):
            raise BadInput(f"the {self.library.title} backend runs on NVIDIA GPUs: use --device cuda (got {device!r})")
        return device_index(device)

    def version(self) -> str:
        """The library's Python runtime version; without it, that of the trtexec on PATH."""
        try:
            return import_library(self.library).__version__
        except EnvironmentProblem:
            trtexec = self.trtexec_on_path()
            if trtexec is None:
                raise
            return trtexec_tool.trtexec_version(trtexec)

    def device_name(self, device: str) -> str:
        name = gpu_name(self.cuda_index(device))
        if name is None:
            raise EnvironmentProblem(f"no NVIDIA GPU {device} here: the {self.library.title} backend needs one "
                                     f"({self.library.install_hint})")
        return name

    def key_options(self, spec: BuildSpec) -> dict:
        return trt_options(spec).key()

    def check_options(self, opts: TrtOptions) -> None:
        """Options this library has no use for, refused before anything is built."""
        if opts.runtime_cache and not self.library.runtime_cache:
            raise BadInput(f"{self.library.title} has no runtime cache: drop the runtime_cache option "
                           f"(it is TensorRT-RTX's)")

    def build_key_parts(self, spec: BuildSpec) -> dict:
        opts = trt_options(spec)
        self.check_options(opts)
        return key_parts(spec, trt_version=self.build_version(opts), gpu_name=self.device_name(spec.device),
                         compute_capability=compute_capability(self.cuda_index(spec.device)),
                         builder="trtexec" if opts.trtexec else "python-api")

    def build_version(self, opts: TrtOptions) -> str:
        """The version of what builds: the trtexec asked for, else the Python runtime."""
        if opts.trtexec:
            if not self.library.trtexec:
                raise BadInput(f"{self.library.title} engines are not built with trtexec: drop the trtexec option")
            return trtexec_tool.trtexec_version(trtexec_tool.find_trtexec(opts.trtexec))
        return import_library(self.library).__version__

    # build -------------------------------------------------------------------------------
    def build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> TensorRTEngine:
        plan = self.plan_build(Path(onnx_path), spec, Path(directory))
        plan.directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        memory: dict = {}
        if plan.opts.trtexec:
            inputs, profiles = self.build_through_trtexec(plan)
        else:
            built, memory = build_with_api(
                import_library(self.library), plan.onnx_path, plan.side_files, plan.plan_path, spec, plan.mode,
                timing_cache=plan.timing_cache, node_order=plan.facts.node_order, targets=self.targets(spec),
                load_plan=self.can_load_plans())
            inputs, profiles = built.inputs, built.profiles
            memory = {**memory, **precision_extras(built.layers)}
        build_seconds = time.perf_counter() - started
        memory.update(check_gpu_memory(plan.opts.gpu_memory_gib, memory.get("activation_bytes") or (),
                                       memory.get("weights_bytes"), [profile_to_json(r) for r in profiles]))
        (plan.directory / NODES_NAME).write_text(json.dumps(list(plan.facts.node_order)), encoding="utf-8")
        return self.load(plan.directory, self.draft(plan, inputs, profiles, build_seconds, memory))

    def plan_build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> BuildPlan:
        opts = trt_options(spec)
        gpu = self.device_name(spec.device)
        version = self.build_version(opts)
        facts = read_onnx_facts(onnx_path)
        generation = self.library.api_generation(version)
        mode = precision_mode(generation, spec.precision, facts.precision,
                              self.library.title if self.library.api_major else "")
        cache = timing_cache_path(gpu, version, opts.timing_cache) if self.library.timing_cache else None
        return BuildPlan(onnx_path, directory, spec, opts, version, generation, mode, facts, cache)

    @staticmethod
    def build_through_trtexec(plan: BuildPlan) -> tuple[dict, tuple[ShapeRange, ...]]:
        inputs = plan.facts.inputs
        profiles = plan_profiles(plan.spec.shapes, plan.spec.ranges, plan.opts.profiles) \
            if any(is_dynamic(d) for d in inputs.values()) else ()
        trtexec_tool.build_with_trtexec(
            trtexec_tool.find_trtexec(plan.opts.trtexec), plan.onnx_path, plan.plan_path, inputs=inputs,
            profiles=profiles, mode=plan.mode, trt_major=plan.api_generation, opt_level=plan.opts.opt_level,
            workspace_mib=plan.opts.workspace_mib, timing_cache=plan.timing_cache,
            layer_info=plan.side_files["graph"])
        return inputs, profiles

    def draft(self, plan: BuildPlan, inputs: dict, profiles: tuple[ShapeRange, ...], build_seconds: float,
              memory: dict) -> EngineManifest:
        """The manifest draft. The cache fills in key, hashes and timings, and sets manifest.ranges to
        the requested ranges: the engine's own profiles (their order is the profile index) live in extras.
        ``memory``: activation bytes per profile and where they came from (build_api)."""
        opts, side = plan.opts, plan.side_files
        graph = read_inspector(side["graph"]) if side["graph"].is_file() else None
        layers = layer_rows(graph) if graph else None
        return draft_manifest(
            self, plan.spec, plan.onnx_path, PLAN_NAME,
            builder="trtexec" if opts.trtexec else "python-api",
            trtexec=trtexec_tool.find_trtexec(opts.trtexec) if opts.trtexec else None,
            tensorrt_version=plan.version,
            profiles=[profile_to_json(r) for r in profiles],
            precision_mode=plan.mode.name,
            precision_note=plan.mode.note,
            strongly_typed=plan.mode.strongly_typed,
            onnx_precision=plan.facts.precision,
            builder_optimization_level=opts.opt_level,
            workspace_mib=opts.workspace_mib,
            profiling_verbosity="detailed",
            profile_mode=opts.profiles,
            timing_cache=str(plan.timing_cache) if plan.timing_cache is not None else None,
            compute_capability=compute_capability(self.cuda_index(plan.spec.device)),
            inputs={n: [d if isinstance(d, int) else -1 for d in dims] for n, dims in inputs.items()},
            graph_json=side["graph"].name if graph else None,
            layers_json=side["layers"].name if side["layers"].is_file() else None,
            library=self.library.module,
            profile_json=side["profile"].name,
            onnx_nodes=NODES_NAME,
            engine_layers=len(graph.profile_layers(0)) if graph else None,
            engine_layers_per_profile=layers_per_profile(layers) if layers else None,
            fused_layers=layers,
            build_seconds_tensorrt=round(build_seconds, 3),
            determinism=determinism_note(memory.get("deterministic")),
            runtime_cache=opts.runtime_cache,
            **{"deterministic": None, **memory},
            **self.target_extras(plan.spec, plan.plan_path))

    # what another library changes (scaleprof.engines.tensorrt.rtx) ----------------------------
    def targets(self, spec: BuildSpec) -> tuple[str, ...]:
        """ComputeCapability members the builder targets; () for TensorRT: the GPU it builds on."""
        return ()

    def target_extras(self, spec: BuildSpec, plan_path: Path) -> dict:
        return {}

    def can_load_plans(self) -> bool:
        """Whether a new plan can be deserialized here (TensorRT: it was just built on the GPU)."""
        return True

    def load(self, directory: Path, manifest: EngineManifest) -> TensorRTEngine:
        return TensorRTEngine(Path(directory), manifest, self.library)
