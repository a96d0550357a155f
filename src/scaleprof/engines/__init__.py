"""engines stage: ONNX file -> runtime engines for a shape set, cached by content.

    from scaleprof.engines import BuildSpec, ShapePoint, build_engine, open_engine
    result = build_engine("model.onnx", BuildSpec(backend="ort", shapes=(ShapePoint(1, 224),)), "out/engines")
    with result.engine as engine:              # or open_engine("out/engines/ort-...")
        runner = engine.runner(ShapePoint(1, 224))
        ms = runner()

Engines read ONNX files only (through scaleprof.core.onnx_file). The torch backend runs the network
the file was exported from, which the caller provides: ``build_engine(..., model_source=rebuild_model)``
with scaleprof.export.rebuild.rebuild_model (likewise open_engine and get_backend).

Modules:
    base          the Backend / Engine / Runner interfaces, BuildSpec, EngineManifest, ModelSource
    backends      BACKENDS (the one list of backend names) and get_backend / backend_for
    devices       device strings, CPU and GPU names, what the host has
    cache         the content-addressed engine cache: build_engine, open_engine
    shapes        shape sets from the CLI's spellings
    anchors       OnnxGraph and the generic LayerResolver: how an engine's layers name ONNX nodes
                  (``Engine.layer_resolver(graph)`` hands the profile stage its backend's rules)
    runners       timed single inferences: perf_counter, CUDA events, CUDA graphs
    ort, ort_profile                      ONNX Runtime, its trace and its layer names
    torch_backend, torch_profile          PyTorch, its torch.profiler module trace
    tensorrt/                             TensorRT, one step per module (see its docstring)

Importing this package imports no runtime: backends are imported by ``get_backend`` when first asked
for. A new backend implements the interface in base and adds a line to ``BACKENDS``.
"""

from scaleprof.engines.base import (Backend, BuildSpec, Engine, EngineManifest, LayerEvent, LayerTrace, ModelSource,
                                    Runner, ShapePoint, ShapeRange)
from scaleprof.engines.cache import BuildResult, build_engine, default_cache_dir, open_engine
from scaleprof.engines.anchors import LayerAnchors, LayerResolver, OnnxGraph
from scaleprof.engines.backends import BACKENDS, backend_for, get_backend
from scaleprof.engines.shapes import shape_set

__all__ = ["BACKENDS", "Backend", "BuildResult", "BuildSpec", "Engine", "EngineManifest", "LayerAnchors",
           "LayerEvent", "LayerResolver", "LayerTrace", "ModelSource", "OnnxGraph", "Runner", "ShapePoint",
           "ShapeRange", "backend_for", "build_engine", "default_cache_dir", "get_backend", "open_engine",
           "shape_set"]
