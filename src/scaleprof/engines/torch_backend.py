"""PyTorch backend ("torch"): the baseline a user would otherwise deploy.

It runs the scaled model itself, not the ONNX graph. Engines read files only, so the network comes
from the caller: ``get_backend("torch", model_source=...)`` (or build_engine / open_engine with
``model_source``) hands the backend a ModelSource, ``scaleprof.export.rebuild.rebuild_model``, which
rebuilds the network from a *recipe*: the ModelSpec, weight seed and BatchNorm recalibration stored in
the ONNX file's metadata (``model_recipe``; seeded weights built on the CPU then moved, so the
weights equal those of the export). Without a model source, building or loading is a BadInput.
The "engine" is that recipe (``torch_model.json``: recipe, options, input and output names) plus
``onnx_nodes.json``, which maps each module to the exported ONNX nodes in its scope, and the manifest.

Options (``BuildSpec.options``):
    channels_last   bool, default False: NHWC memory format for weights and input
    compile         False | True | a torch.compile mode ("reduce-overhead", "max-autotune", ...)
    cuda_graph      bool, default True on CUDA: capture once, time graph replays

Timing (scaleprof.engines.runners): CPU, ``time.perf_counter`` around one forward under
``torch.inference_mode``; CUDA, CUDA events around one CUDA-graph replay ("cuda-graph+cuda-events")
or one eager forward ("cuda-events"), synchronised on the end event. fp16 (``.half()``) on CUDA only.

Layer profile (scaleprof.engines.torch_profile): ``torch.profiler`` with a range around every
module's forward; each LayerEvent is one module with its exclusive time per iteration and the ONNX
nodes in its scope, a BatchNorm the export folded into its conv merged into that conv's event.
Profiling runs the eager model (compiled graphs and CUDA graphs hide module boundaries).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaleprof.complexity.onnx_count import check_graph_matches
from scaleprof.core.onnx_file import META_EXPORT, META_SPEC, image_input, load_model, metadata_props
from scaleprof.engines.base import Backend, BuildSpec, Engine, EngineManifest, LayerTrace, ModelSource, ShapePoint
from scaleprof.engines.cache import draft_manifest
from scaleprof.engines.devices import cuda_present, device_index, name_of_device
from scaleprof.engines.runners import CpuRunner, CudaEagerRunner, CudaGraphRunner
from scaleprof.engines.shapes import check_accepts
from scaleprof.engines.torch_profile import merge_folded_norms, onnx_node_map, profile_modules
from scaleprof.errors import BadInput, EnvironmentProblem

ARTIFACT = "torch_model.json"
NODE_MAP = "onnx_nodes.json"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def resolve_options(spec: BuildSpec) -> dict:
    """The options with their defaults filled in (part of the cache key)."""
    opts = dict(spec.options)
    unknown = set(opts) - {"channels_last", "compile", "cuda_graph"}
    if unknown:
        raise BadInput(f"unknown torch option(s) {', '.join(sorted(unknown))}: "
                       "torch takes channels_last, compile and cuda_graph")
    for flag in ("channels_last", "cuda_graph"):
        if flag in opts and opts[flag] not in (True, False):
            raise BadInput(f"torch option {flag} must be true or false, got {opts[flag]!r}")
    compile_ = opts.get("compile", False)
    if compile_ not in (False, True) and compile_ not in COMPILE_MODES:
        raise BadInput(f"compile must be true, false or a mode ({', '.join(COMPILE_MODES)}), got {compile_!r}")
    cuda_graph = bool(opts.get("cuda_graph", spec.device != "cpu"))
    if cuda_graph and spec.device == "cpu":
        raise BadInput("cuda_graph needs --device cuda")
    if spec.precision == "fp16" and spec.device == "cpu":
        raise BadInput("the torch backend runs fp16 on CUDA only: use --device cuda or --precision fp32")
    return {"channels_last": bool(opts.get("channels_last", False)),
            "compile": "default" if compile_ is True else compile_, "cuda_graph": cuda_graph}


def model_recipe(onnx_model, onnx_path: str | Path = "model") -> dict:
    """What a ModelSource needs to rebuild the network ``onnx_model`` was exported from, read from the
    file's scaleprof metadata: the spec (as stored), the weight seed, and whether (and at which
    resolution) BatchNorm was recalibrated. A file scaleprof did not export is a BadInput."""
    _, meta = metadata_props(onnx_model)
    spec = meta.get(META_SPEC)
    if not spec:
        raise BadInput(f"{onnx_path} carries no scaleprof model spec; the torch backend rebuilds the model "
                       "from it: make the file with `scaleprof export`")
    record = meta.get(META_EXPORT) or {}
    return {"spec": spec, "seed": int(record.get("seed", 0)),
            "recalibrated_bn": bool(record.get("recalibrated_bn", False)),
            "resolution": record.get("resolution") or spec.get("resolution")}


class TorchBackend(Backend):
    name = "torch"                 # install hint: registry.BACKENDS

    def available(self) -> bool:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False
        return True

    def version(self) -> str:
        import torch

        return torch.__version__

    def check_device(self, device: str) -> None:
        if device != "cpu" and not cuda_present(device):
            raise EnvironmentProblem(f"PyTorch sees no CUDA GPU {device} on this host")

    def device_name(self, device: str) -> str:
        return name_of_device(device)

    def build_key_parts(self, spec: BuildSpec) -> dict:
        return resolve_options(spec)

    def required_model_source(self) -> ModelSource:
        if self.model_source is None:
            raise BadInput("the torch backend runs the network the ONNX file was exported from and needs a model "
                           "source to rebuild it: pass model_source=scaleprof.export.rebuild.rebuild_model")
        return self.model_source

    def build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> Engine:
        model_source = self.required_model_source()
        options = resolve_options(spec)
        onnx_model = load_model(onnx_path, load_weights=False)
        self.check_model(onnx_model, onnx_path)
        recipe = model_recipe(onnx_model, onnx_path)
        input_name, _ = image_input(onnx_model, onnx_path)
        output_names = [o.name for o in onnx_model.graph.output]
        recipe = {**recipe, "options": options, "input": input_name, "outputs": output_names}
        model = model_source(recipe)
        Path(directory, ARTIFACT).write_text(json.dumps(recipe, indent=2, sort_keys=True))
        Path(directory, NODE_MAP).write_text(json.dumps(onnx_node_map(onnx_model, model), indent=1, sort_keys=True))
        manifest = draft_manifest(self, spec, onnx_path, ARTIFACT, input=input_name, node_map=NODE_MAP, **options)
        return TorchEngine(directory, manifest, model_source)

    def check_model(self, onnx_model, onnx_path: Path) -> None:
        # the network is rebuilt from the metadata: it is timed as this file only if it is this file's graph
        model_recipe(onnx_model, onnx_path)
        check_graph_matches(onnx_model, onnx_path)

    def load(self, directory: Path, manifest: EngineManifest) -> Engine:
        return TorchEngine(directory, manifest, self.required_model_source())


class TorchEngine(Engine):
    def __init__(self, directory: Path, manifest: EngineManifest, model_source: ModelSource):
        super().__init__(directory, manifest)
        self.model_source = model_source
        self.model = None          # the eager module
        self.fn = None             # what runs: the module or its torch.compile wrapper
        self.recipe: dict = {}

    # -- set-up ---------------------------------------------------------------------------------
    @property
    def on_cuda(self) -> bool:
        return self.manifest.device != "cpu"

    def _torch_device(self):
        import torch

        return torch.device("cuda", device_index(self.manifest.device)) if self.on_cuda else torch.device("cpu")

    def _dtype(self):
        import torch

        return torch.float16 if self.manifest.precision == "fp16" else torch.float32

    def load(self) -> None:
        if self.model is not None:
            return
        import torch

        self.recipe = json.loads(self.artifact_path.read_text())
        if self.manifest.threads:
            torch.set_num_threads(self.manifest.threads)     # process-wide: torch has no per-model setting
        model = self.model_source(self.recipe).to(device=self._torch_device(), dtype=self._dtype())
        if self.recipe["options"]["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        self.model = model.eval()
        mode = self.recipe["options"]["compile"]
        self.fn = torch.compile(self.model, mode=None if mode == "default" else mode) if mode else self.model

    def release(self) -> None:
        if self.model is None:
            return
        self.model = self.fn = None
        if self.on_cuda:
            import torch

            torch.cuda.synchronize(self._torch_device())
            torch.cuda.empty_cache()

    def input_shapes(self) -> dict[str, tuple]:
        name = self.manifest.extras.get("input") or json.loads(self.artifact_path.read_text())["input"]
        return {name: ("batch", 3, "height", "width")}

    def _prepare(self, x):
        import torch

        self.load()
        x = torch.as_tensor(x).to(device=self._torch_device(), dtype=self._dtype())
        if self.recipe["options"]["channels_last"]:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def make_input(self, shape: ShapePoint, seed: int = 0):
        import torch

        check_accepts(self, shape)
        gen = torch.Generator().manual_seed(seed)
        return self._prepare(torch.randn(shape.dims(), generator=gen))

    # -- running --------------------------------------------------------------------------------
    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        self.load()
        if len(inputs) != 1:
            raise BadInput(f"the torch engine takes one image input, got {len(inputs)}")
        x = self._prepare(next(iter(inputs.values())))
        with torch.inference_mode():
            out = self.fn(x)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {name: o.float().cpu().numpy() for name, o in zip(self.recipe["outputs"], outs)}

    def runner(self, shape: ShapePoint):
        x = self.make_input(shape)
        if not self.on_cuda:
            return CpuRunner(self.fn, x, shape)
        if self.recipe["options"]["cuda_graph"]:
            return CudaGraphRunner(self.fn, x, shape)
        return CudaEagerRunner(self.fn, x, shape)

    # -- layer profile --------------------------------------------------------------------------
    def profile_layers(self, shape: ShapePoint, iterations: int, warmup: int = 3) -> LayerTrace:
        """profile_modules, with each BatchNorm the export folded into a conv merged into that conv."""
        import torch

        trace = self.profile_modules(shape, iterations, warmup)
        modules = list(self.model.named_modules())
        norms = {name for name, m in modules if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
        convs = {name for name, m in modules if isinstance(m, torch.nn.modules.conv._ConvNd)}
        return LayerTrace(merge_folded_norms(trace.events, norms, convs), trace.iterations, trace.profiler)

    def profile_modules(self, shape: ShapePoint, iterations: int, warmup: int = 3) -> LayerTrace:
        """One LayerEvent per module, as torch.profiler measured it (scaleprof.engines.torch_profile)."""
        if iterations <= 0:
            raise BadInput(f"iterations must be positive, got {iterations}")
        x = self.make_input(shape)
        node_file = self.directory / NODE_MAP
        node_map = json.loads(node_file.read_text()) if node_file.is_file() else {}
        return profile_modules(self.model, x, iterations, warmup, self.on_cuda, self._sync, node_map)

    def _sync(self):
        if self.on_cuda:
            import torch

            torch.cuda.synchronize(self._torch_device())
