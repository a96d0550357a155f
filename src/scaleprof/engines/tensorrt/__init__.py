"""The TensorRT backends (TensorRT 10 and 11; TensorRT-RTX), one step per module, written against
TensorRT's Python API. Nothing in this package imports ``tensorrt`` at module level.

    library      which Python module provides TensorRT's API (a TensorRTLibrary: TENSORRT,
                 TENSORRT_RTX), importing it (the only import, one line on how to install it when
                 missing), its logger and IProfiler adapter
    build_log    what the builder logs during one build: its first telling error, the
                 activation memory per optimisation profile, the weights memory, the layer report
    engine_layers  the builder's layer report (the engine's layers after fusion, with ONNX
                 origins, tactics, data types) as inspector JSON, and the manifest's rows of it
    options      build options, precision mode (builder flag or strongly typed network), cache-key
                 parts, timing-cache and side-file paths
    profiles     optimisation profiles: planning, per-input dims, choosing one for a shape
    build_api    the build through the Python API, a step per function (parse, inputs, config,
                 profiles, timing cache, build_serialized_network, layer file, inspector JSON)
    network      the network's layers before fusion (the layer file) against predicted counts,
                 and the builder's activation memory against acts x batch x element size
    trtexec      the same build through trtexec, its timing command lines and --exportTimes JSON
    runner       device buffers (torch CUDA tensors) and the CUDA-graph / CUDA-event timed runner
    runtime_cache  TensorRT-RTX's IRuntimeCache where the engine runs (option runtime_cache)
    engine       TensorRTEngine: load, run, runner, IProfiler layer profile, layer_resolver
    inspector    the engine inspector's layer JSON (TensorRT 10 and 11 schemas)
    origins      TensorRT layer -> ONNX nodes (Metadata, fused names, Myelin regions), for the
                 engine's events and the profile stage's TensorRTLayerResolver
    profiler     IProfiler times per iteration, trtexec's --exportProfile JSON
    backend      TensorRTBackend: host checks, cache-key parts, build orchestration, manifest
    rtx          TensorRTRTXBackend (``tensorrt-rtx``): ahead-of-time builds without a GPU,
                 compute-capability targets in the key, the targets the plan really holds

The pure modules (options, profiles, inspector, origins, profiler, build_log, trtexec's
command lines) are tested without a GPU; the API build runs for real with TensorRT-RTX (no GPU
needed), and what only TensorRT 10/11 do against a recording stand-in for the module. The library
is a parameter of the backend, its engines and the API build: the backend for another library with
the same API is a TensorRTLibrary constant, a TensorRTBackend subclass naming it (rtx), and a line
in scaleprof.engines.backends.BACKENDS.
NVIDIA's engine explorer opens an engine's ``engine.plan.graph.json`` with its ``.profile.json``.
"""
