"""The TensorRT backend (TensorRT 10 and 11), one step per module, written against TensorRT's
Python API. Nothing in this package imports ``tensorrt`` at module level.

    library      which Python module provides TensorRT's API (a TensorRTLibrary), importing it
                 (the only import, one line on how to install it when missing), its logger and
                 IProfiler adapter
    options      build options, precision mode (builder flag or strongly typed network), cache-key
                 parts, timing-cache and side-file paths
    profiles     optimisation profiles: planning, per-input dims, choosing one for a shape
    build_api    the build through the Python API, a step per function (parse, inputs, config,
                 profiles, timing cache, build_serialized_network, inspector JSON)
    trtexec      the same build through trtexec, its timing command lines and --exportTimes JSON
    runner       device buffers (torch CUDA tensors) and the CUDA-graph / CUDA-event timed runner
    engine       TensorRTEngine: load, run, runner, IProfiler layer profile, layer_resolver
    inspector    the engine inspector's layer JSON (TensorRT 10 and 11 schemas)
    layer_map    TensorRT layer -> ONNX nodes (Metadata, fused names, Myelin regions), for the
                 engine's events and the profile stage's TensorRTLayerResolver
    layer_times  IProfiler times per iteration, trtexec's --exportProfile JSON
    backend      TensorRTBackend: host checks, cache-key parts, build orchestration, manifest

The pure modules (options, profiles, inspector, layer_map, layer_times, trtexec's command lines)
are tested without a GPU; the build's control flow against a recording stand-in for the module.
The library is a parameter of the backend, its engines and the API build: a backend for another
library with the same API (TensorRT-RTX, ``tensorrt_rtx``) is a TensorRTLibrary constant, a
TensorRTBackend subclass naming it, and a line in scaleprof.engines.registry.BACKENDS.
NVIDIA's engine explorer opens an engine's ``engine.plan.graph.json`` with its ``.profile.json``.
"""
