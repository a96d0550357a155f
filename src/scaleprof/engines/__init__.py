"""engines stage: ONNX file -> runtime engines for a shape set, cached by content.

    from scaleprof.engines import BuildSpec, ShapePoint, build_engine, open_engine
    result = build_engine("model.onnx", BuildSpec(backend="ort", shapes=(ShapePoint(1, 224),)), "out/engines")
    with result.engine as engine:              # or open_engine("out/engines/ort-...")
        runner = engine.runner(ShapePoint(1, 224))
        ms = runner()

Importing this package imports no runtime: backends (ort, torch, tensorrt) are imported by
``get_backend`` when first asked for (scaleprof.engines.registry). The Backend/Engine interface
is in scaleprof.engines.base; a new backend implements it and adds a line to ``BACKENDS``.
"""

from scaleprof.engines.base import (Backend, BuildSpec, Engine, EngineManifest, LayerEvent, LayerTrace, Runner,
                                    ShapePoint, ShapeRange)
from scaleprof.engines.cache import BuildResult, build_engine, default_cache_dir, open_engine
from scaleprof.engines.registry import BACKENDS, backend_for, get_backend
from scaleprof.engines.shapes import shape_set

__all__ = ["BACKENDS", "Backend", "BuildResult", "BuildSpec", "Engine", "EngineManifest", "LayerEvent",
           "LayerTrace", "Runner", "ShapePoint", "ShapeRange", "backend_for", "build_engine",
           "default_cache_dir", "get_backend", "open_engine", "shape_set"]
