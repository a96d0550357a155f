"""A built TensorRT engine: the plan deserialized on its GPU, run, timed and profiled layer by layer.

Loading checks the plan against its manifest (checksum, library version) and that a GPU is here
before deserializing it.
Each runner has its own execution context with the optimisation profile chosen per shape
(scaleprof.engines.tensorrt.runner); per-layer times come from an IProfiler on a separate
context (the profiler synchronises after each layer, so it never shares one with timing) and are
written as ``<engine>.profile.json`` in trtexec's format. ``layer_resolver`` gives the profile
stage TensorRT's naming rules (scaleprof.engines.tensorrt.origins).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from scaleprof.engines.base import Engine, EngineManifest, LayerTrace, ShapePoint
from scaleprof.engines.devices import torch_sees_a_gpu
from scaleprof.engines.anchors import OnnxGraph
from scaleprof.engines.tensorrt.inspector import read_inspector
from scaleprof.engines.tensorrt.origins import InspectorLayerMap, TensorRTLayerResolver
from scaleprof.engines.tensorrt.profiler import LayerTimes, write_profile
from scaleprof.engines.tensorrt.library import (TENSORRT, TensorRTLibrary, import_library, logger_for,
                                                parse_version, profiler_for)
from scaleprof.engines.tensorrt.options import NODES_NAME, sidecar_paths
from scaleprof.engines.tensorrt.profiles import engine_profiles, select_profile, symbolic_shape
from scaleprof.engines.tensorrt.runner import TensorRTRunner, bind_buffers, io_tensors
from scaleprof.engines.tensorrt.runtime_cache import RuntimeCache
from scaleprof.errors import BadInput, EnvironmentProblem


class TensorRTEngine(Engine):
    def __init__(self, directory: Path, manifest: EngineManifest, library: TensorRTLibrary = TENSORRT):
        super().__init__(directory, manifest)
        self.library = library
        self._trt = None
        self._engine = None
        self._stream = None
        self._device = None
        self._run_context = None
        self._layer_map: InspectorLayerMap | None = None
        self._runtime_cache: RuntimeCache | None = None

    # lifecycle ---------------------------------------------------------------------------
    def _import(self):
        try:
            return import_library(self.library)
        except EnvironmentProblem as err:
            if self.manifest.extras.get("trtexec"):
                raise EnvironmentProblem(
                    f"{err}; to time this trtexec-built engine without it, run trtexec and "
                    f"`scaleprof ingest` its JSON") from None
            raise

    def _read_plan(self, runtime_version: str) -> bytes:
        """The plan's bytes, checked against the manifest: present, intact, same library version."""
        if not self.artifact_path.is_file():
            raise EnvironmentProblem(f"engine plan missing: {self.artifact_path}")
        data = self.artifact_path.read_bytes()
        if self.manifest.artifact_sha256 and hashlib.sha256(data).hexdigest() != self.manifest.artifact_sha256:
            raise EnvironmentProblem(f"engine plan {self.artifact_path} is corrupt (checksum mismatch): rebuild it")
        if parse_version(runtime_version)[:2] != parse_version(self.manifest.backend_version)[:2]:
            raise EnvironmentProblem(f"engine built with {self.library.title} {self.manifest.backend_version}, "
                                     f"this host has {runtime_version}: rebuild it here")
        return data

    def load(self) -> None:
        if self._engine is not None:
            return
        trt = self._import()
        data = self._read_plan(trt.__version__)
        if not torch_sees_a_gpu():
            built = " (its plan was built ahead of time and runs on one)" if self.library.builds_without_gpu else ""
            raise EnvironmentProblem(f"running a {self.library.title} engine needs {self.library.runs_on}, "
                                     f"and this host has none{built}: {self.directory}")
        import torch

        device = torch.device(self.manifest.device if self.manifest.device.startswith("cuda") else "cuda")
        torch.cuda.set_device(device)
        logger_for(trt).book.reset()                  # report this load's errors, not an earlier build's
        engine = trt.Runtime(logger_for(trt)).deserialize_cuda_engine(data)
        if engine is None:
            raise EnvironmentProblem(f"{self.library.title} could not load {self.artifact_path.name} (built for "
                                     f"another GPU or version?): {logger_for(trt).last_error()}")
        self._trt, self._engine = trt, engine
        if self.manifest.extras.get("runtime_cache"):
            self._runtime_cache = RuntimeCache(engine, self.manifest.extras["runtime_cache"])
        self._device = device
        self._stream = torch.cuda.Stream(device=device)

    def release(self) -> None:
        if self._runtime_cache is not None:
            self._runtime_cache.save()
            self._runtime_cache = None
        self._run_context = None
        self._engine = None
        self._stream = None
        self._trt = None

    def _new_context(self, engine):
        return self._runtime_cache.context(engine) if self._runtime_cache else engine.create_execution_context()

    def _require(self):
        if self._engine is None:
            self.load()
        return self._trt, self._engine

    # shapes and buffers ------------------------------------------------------------------
    def input_shapes(self) -> dict[str, tuple]:
        return {t.name: symbolic_shape(t.dims) for t in io_tensors(*self._require()) if t.is_input}

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
        trt, engine = self._require()
        logger_for(trt).book.reset()                  # the messages of this shape's setup and runs
        context = context or self._new_context(engine)
        if context is None:
            raise EnvironmentProblem(f"{self.library.title} could not create an execution context: "
                                     f"{logger_for(trt).last_error()}")
        index = self._profile_index(shape)
        if engine.num_optimization_profiles > 1 or index:
            if not context.set_optimization_profile_async(index, self._stream.cuda_stream):
                raise EnvironmentProblem(f"TensorRT refused optimisation profile {index} for {shape}")
        return context, bind_buffers(context, io_tensors(trt, engine), shape, self._device, inputs)

    # running -----------------------------------------------------------------------------
    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        trt, engine = self._require()
        dims = tuple(next(iter(inputs.values())).shape)
        if len(dims) != 4 or dims[2] != dims[3]:
            raise BadInput(f"input shape {dims} is not a square NCHW image batch")
        if self._run_context is None:
            self._run_context = self._new_context(engine)
        context, tensors = self._prepare(ShapePoint(int(dims[0]), int(dims[2])), self._run_context, inputs)
        if not context.execute_async_v3(self._stream.cuda_stream):
            raise EnvironmentProblem(f"{self.library.title} could not run the engine: {logger_for(trt).last_error()}")
        self._stream.synchronize()
        outputs = {}
        for t in io_tensors(trt, engine):
            if not t.is_input:
                out = tensors[t.name]
                wide = out.float() if out.dtype.is_floating_point and out.element_size() < 4 else out
                outputs[t.name] = wide.cpu().numpy()
        return outputs

    def runner(self, shape: ShapePoint) -> TensorRTRunner:
        context, tensors = self._prepare(shape)
        return TensorRTRunner(context, tensors, self._stream, shape)

    # per-layer profile -------------------------------------------------------------------
    def layer_map(self) -> InspectorLayerMap:
        """Layer name -> ONNX nodes, from this engine's graph.json and ONNX node order."""
        if self._layer_map is None:
            side = sidecar_paths(self.artifact_path)
            graph = read_inspector(side["graph"]) if side["graph"].is_file() else None
            nodes_file = self.directory / NODES_NAME
            order = json.loads(nodes_file.read_text()) if nodes_file.is_file() else ()
            self._layer_map = InspectorLayerMap(graph, order)
        return self._layer_map

    def layer_resolver(self, graph: OnnxGraph) -> TensorRTLayerResolver:
        return TensorRTLayerResolver(graph)

    def profile_layers(self, shape: ShapePoint, iterations: int, warmup: int = 3) -> LayerTrace:
        """Per-layer times from an IProfiler on a separate execution context (never the timed
        one: the profiler synchronises after each layer). Writes ``<engine>.profile.json`` in
        trtexec's --exportProfile format."""
        trt, _ = self._require()
        times = LayerTimes()
        context, _buffers = self._prepare(shape)
        profiler = profiler_for(trt, times)           # held here: TensorRT calls back into it
        context.profiler = profiler
        handle = self._stream.cuda_stream
        for _ in range(warmup + max(1, int(iterations))):
            times.next_iteration()
            if not context.execute_async_v3(handle):
                raise EnvironmentProblem(f"{self.library.title} could not run the engine at {shape}: "
                                         f"{logger_for(trt).last_error()}")
            self._stream.synchronize()
        trace = times.trace(self.layer_map(), skip=warmup)
        side = sidecar_paths(self.artifact_path)
        write_profile(trace, side["profile"])
        write_profile(trace, side["profile"].with_name(f"{self.artifact_path.name}.{shape}.profile.json"))
        del context, profiler
        return trace
