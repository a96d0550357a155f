"""The Backend interface (in the spirit of Polygraphy's loaders and runners).

    backend = get_backend("ort")                      # lazy: imports the runtime only here
    engine = backend.build(onnx_path, build_spec, engine_dir)   # or backend.load(engine_dir)
    with engine:                                      # load() ... release()
        runner = engine.runner(ShapePoint(1, 224))    # inputs made once, outside any timed region
        elapsed_ms = runner()                         # one timed inference, measured the backend's way
        trace = engine.profile_layers(ShapePoint(1, 224), iterations=20)

Backends: "ort" (ONNX Runtime, the embedded default), "torch" (PyTorch, the baseline),
"tensorrt" (TensorRT 10 and 11) and "tensorrt-rtx" (TensorRT-RTX: builds without a GPU, runs on
RTX-class GPUs): scaleprof.engines.backends.BACKENDS lists them. Engines are cached by content
(scaleprof.engines.cache).

An engine also tells the profile stage how its layers are named: ``engine.layer_resolver(graph)``
(scaleprof.engines.anchors). The torch backend runs the network the ONNX file was exported from,
which it cannot make itself (engines read files only): the caller hands it a ``ModelSource``
(``get_backend(name, model_source=...)``, likewise build_engine and open_engine).
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from scaleprof.engines.anchors import LayerResolver, OnnxGraph


@dataclass(frozen=True, order=True)
class ShapePoint:
    batch: int
    resolution: int            # square inputs: H = W = resolution

    def dims(self, channels: int = 3) -> tuple[int, int, int, int]:
        return (self.batch, channels, self.resolution, self.resolution)

    def __str__(self) -> str:
        return f"{self.batch}x3x{self.resolution}x{self.resolution}"


@dataclass(frozen=True)
class ShapeRange:
    """A range of shapes one engine profile serves (TensorRT's min/opt/max)."""

    min: ShapePoint
    opt: ShapePoint
    max: ShapePoint

    def contains(self, point: ShapePoint) -> bool:
        return (self.min.batch <= point.batch <= self.max.batch
                and self.min.resolution <= point.resolution <= self.max.resolution)


@dataclass(frozen=True)
class BuildSpec:
    backend: str = "ort"
    device: str = "cpu"                         # "cpu" or "cuda" (or "cuda:N")
    precision: str = "fp32"                     # "fp32", "fp16", or "int8"/"fp8" from a QDQ file of that type
    threads: int | None = None                  # intra-op threads (CPU); None = backend default
    shapes: tuple[ShapePoint, ...] = (ShapePoint(1, 224),)   # every shape the engine must take
    ranges: tuple[ShapeRange, ...] = ()         # optional explicit ranges (TensorRT profiles)
    options: tuple[tuple[str, Any], ...] = ()   # backend options, sorted (key, value) pairs

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EngineManifest:
    """What an engine directory holds, written as manifest.json beside the artifact."""

    backend: str
    backend_version: str
    device: str
    device_name: str                # CPU model or GPU name the engine was built for
    precision: str
    threads: int | None
    key: str                        # the cache key (scaleprof.engines.cache)
    onnx_sha256: str
    onnx_path: str                  # the ONNX file it was built from
    artifact: str                   # file name inside the engine directory (plan, optimised model, ...)
    shapes: tuple[ShapePoint, ...]
    ranges: tuple[ShapeRange, ...] = ()
    options: dict = field(default_factory=dict)
    artifact_sha256: str = ""       # checked on load: a corrupt or truncated artifact is rebuilt
    build_seconds: float = 0.0
    extras: dict = field(default_factory=dict)   # backend specifics (e.g. "strongly_typed", side files)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EngineManifest":
        """The manifest ``text`` holds; ValueError naming the first field of the wrong type (a
        hand-edited or foreign manifest.json), never a manifest that fails later."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for name, kinds in _MANIFEST_TYPES.items():
            if name in data and (isinstance(data[name], bool) or not isinstance(data[name], kinds)):
                raise ValueError(f"{name} is {type(data[name]).__name__}, not {kinds[0].__name__}")
        artifact = Path(data.get("artifact", ""))
        if artifact.is_absolute() or ".." in artifact.parts:
            raise ValueError(f"artifact {str(artifact)!r} is not a file inside the engine directory")
        data["shapes"] = tuple(_point(p) for p in data.get("shapes", ()))
        data["ranges"] = tuple(ShapeRange(*(_point(r[k]) for k in ("min", "opt", "max")))
                               for r in data.get("ranges", ()))
        return cls(**data)


_TEXT = ("backend", "backend_version", "device", "device_name", "precision", "key", "onnx_sha256", "onnx_path",
         "artifact", "artifact_sha256")
_MANIFEST_TYPES = {**{name: (str,) for name in _TEXT}, "threads": (int, type(None)), "shapes": (list,),
                   "ranges": (list,), "options": (dict,), "build_seconds": (float, int), "extras": (dict,)}


def _point(data) -> ShapePoint:
    if not isinstance(data, dict) or set(data) != {"batch", "resolution"} or \
            not all(type(v) is int and v > 0 for v in data.values()):
        raise ValueError(f"shape {str(data)[:60]} is not a positive batch and resolution")
    return ShapePoint(data["batch"], data["resolution"])


class Runner(Protocol):
    """One prepared inference at a fixed shape. Calling it runs once and returns milliseconds,
    measured the backend's correct way (``timing_method`` says which: "perf_counter",
    "cuda-events", "cuda-graph+cuda-events")."""

    shape: ShapePoint
    timing_method: str

    def __call__(self) -> float: ...


@dataclass(frozen=True)
class LayerEvent:
    """One engine layer's times over the profiled iterations, as the backend's profiler saw it."""

    name: str                       # the engine's own layer name (ORT node, TRT layer, torch module)
    op_type: str                    # the engine's layer type ("FusedConv", "CaskConvolution", "Conv2d")
    times_ms: tuple[float, ...]     # one per profiled iteration
    onnx_nodes: tuple[str, ...] = ()   # exported ONNX node names, where the backend knows them
    opaque: bool = False            # a fused region whose inner split is unknown (TRT Myelin)


@dataclass(frozen=True)
class LayerTrace:
    events: tuple[LayerEvent, ...]
    iterations: int
    profiler: str                   # "onnxruntime", "torch.profiler", "tensorrt.IProfiler", "trtexec"


class Engine(ABC):
    """A built engine: an artifact in a directory plus its manifest."""

    def __init__(self, directory: Path, manifest: EngineManifest):
        self.directory = Path(directory)
        self.manifest = manifest

    @property
    def artifact_path(self) -> Path:
        return self.directory / self.manifest.artifact

    @abstractmethod
    def load(self) -> None:
        """Deserialize / create the session. Idempotent."""

    @abstractmethod
    def release(self) -> None:
        """Free the session and device memory. Idempotent."""

    @abstractmethod
    def input_shapes(self) -> dict[str, tuple]:
        """Input name -> shape with symbolic dims as strings (e.g. ('batch', 3, 'height', 'width'))."""

    @abstractmethod
    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run once on the given inputs (numpy arrays or torch tensors); outputs as numpy arrays."""

    @abstractmethod
    def runner(self, shape: ShapePoint) -> Runner:
        """Prepare inputs for ``shape`` once and return a timed single-inference callable."""

    @abstractmethod
    def profile_layers(self, shape: ShapePoint, iterations: int) -> LayerTrace:
        """Run the backend's layer profiler (separately from end-to-end timing)."""

    def layer_resolver(self, graph: OnnxGraph) -> LayerResolver:
        """How this engine's profiled layers map onto ``graph``, the ONNX file it was built from.
        The generic rules suit engines whose events already name their ONNX nodes."""
        return LayerResolver(graph)

    def accepts(self, shape: ShapePoint) -> bool:
        if any(r.contains(shape) for r in self.manifest.ranges):
            return True
        return shape in self.manifest.shapes

    def __enter__(self) -> "Engine":
        self.load()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


ModelSource = Callable[[dict], Any]
"""recipe -> torch.nn.Module: the network an ONNX file was exported from, rebuilt from the recipe the
torch backend reads out of the file's metadata (scaleprof.export.rebuild.rebuild_model)."""


class Backend(ABC):
    """A runtime that turns an ONNX file into an Engine. Import the runtime lazily, in methods."""

    # False: the artifact does not depend on the device it was built on (an ahead-of-time plan)
    device_bound = True

    name: str = ""
    install_hint: str = ""          # what to install, when it says more than its line in registry.BACKENDS
    model_source: ModelSource | None = None     # where the network comes from, for backends that run it

    def with_model_source(self, model_source: ModelSource | None) -> "Backend":
        """This backend, handed ``model_source`` (a copy: the shared instance stays as it is)."""
        if model_source is None or model_source is self.model_source:
            return self
        configured = copy.copy(self)
        configured.model_source = model_source
        return configured

    @abstractmethod
    def available(self) -> bool:
        """True when the runtime imports (and, for GPU backends, a GPU is present)."""

    @abstractmethod
    def version(self) -> str: ...

    def check_device(self, device: str) -> None:
        """Raise EnvironmentProblem when this host cannot use ``device`` (well formed already)."""

    @abstractmethod
    def device_name(self, device: str) -> str:
        """CPU model or GPU name for ``device``: part of the cache key and the environment."""

    @abstractmethod
    def build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> Engine:
        """Build into ``directory`` (which the cache created) and return the engine, not loaded."""

    @abstractmethod
    def load(self, directory: Path, manifest: EngineManifest) -> Engine:
        """An engine object for an existing, verified engine directory, not loaded."""

    def build_key_parts(self, spec: BuildSpec) -> dict:
        """Extra key parts the backend's build depends on (e.g. TensorRT's builder options)."""
        return {}

    def check_model(self, onnx_model, onnx_path: Path) -> None:
        """BadInput, before anything is built, for an ONNX model (weights not loaded) this backend
        cannot build from the file alone as it is labelled (the torch backend: a graph its metadata
        does not describe)."""

    def run_refusal(self, device: str) -> str | None:
        """Why this backend's engines cannot run on ``device`` here, in one line; None when they can
        (or when building would find out first). Asked before building an engine only to run it."""
        return None

    def key_options(self, spec: BuildSpec):
        """The build options as the cache key holds them; a backend that knows its options' meaning
        returns them canonical (defaults left out, lists in one order)."""
        return sorted((k, repr(v)) for k, v in spec.options)

    def key_device(self, spec: BuildSpec) -> dict:
        """What of the device the artifact depends on: the device and its name."""
        return {"device": spec.device, "device_name": self.device_name(spec.device)}


ProgressCallback = Callable[[str], None]
