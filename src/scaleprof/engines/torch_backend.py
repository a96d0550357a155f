"""PyTorch backend ("torch"): the baseline a user would otherwise deploy.

It runs the scaled model itself, not the ONNX graph: the ModelSpec stored in the ONNX file's
metadata (scaleprof.export) is rebuilt with ``scaleprof.models.build_model`` (seeded weights, built
on the CPU then moved, so the weights equal those of the export). The "engine" is that recipe
(``torch_model.json``: spec, seed, options) plus ``onnx_nodes.json``, which maps each module to the
exported ONNX nodes in its scope, and the manifest.

Options (``BuildSpec.options``):
    channels_last   bool, default False: NHWC memory format for weights and input
    compile         False | True | a torch.compile mode ("reduce-overhead", "max-autotune", ...)
    cuda_graph      bool, default True on CUDA: capture once, time graph replays

Timing (Runner): CPU, ``time.perf_counter`` around one forward under ``torch.inference_mode``;
CUDA, CUDA events around one CUDA-graph replay ("cuda-graph+cuda-events") or one eager forward
("cuda-events"), synchronised on the end event. fp16 (``.half()``) on CUDA only.

Layer profile: ``torch.profiler`` with a ``record_function`` range around every module's forward
(hooks). Each LayerEvent is one module (its qualified name, e.g. ``blocks.0.0.conv_dw``) with its
*exclusive* time per iteration: the operators it calls itself, not its child modules' (CPU time on
the CPU, kernel time on CUDA), so the times add up without double counting, and the Python and
hook time between operators, which no ONNX node stands for, is left out; ``onnx_nodes`` are the exported
nodes whose scope is that module (``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``). A BatchNorm the
export folded into its conv (no ONNX node of its own) is merged into that conv's event,
``blocks.0.0.conv_dw + blocks.0.0.bn1`` (merge_folded_norms), so its time maps to the conv's node.
Profiling runs the eager model (compiled graphs and CUDA graphs hide module boundaries).
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any

from scaleprof.engines.base import (Backend, BuildSpec, Engine, EngineManifest, LayerEvent, LayerTrace,
                                    ShapePoint)
from scaleprof.engines.registry import cuda_present, device_index, name_of_device
from scaleprof.errors import BadInput, EnvironmentProblem

ARTIFACT = "torch_model.json"
NODE_MAP = "onnx_nodes.json"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ITER_LABEL = "scaleprof/iter/"
MODULE_LABEL = "scaleprof/module/"
ROOT = "<model>"                 # LayerEvent name of the top-level module's own work


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


def module_of_node(node, modules: set[str]) -> str:
    """The qualified name of the module an exported ONNX node came from ('' for the top level).

    TorchScript exporter: the node name is the scope path, ``/blocks/blocks.0/blocks.0.0/conv_dw/Conv``
    (each component a module attribute, or already the qualified name). Dynamo exporter: the
    ``pkg.torch.onnx.name_scopes`` metadata lists the qualified names from the top down.
    """
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            return next((s for s in reversed(scopes) if s in modules), "")
    qualname, best = "", ""
    for part in node.name.strip("/").split("/")[:-1]:
        qualname = part if not qualname or part.startswith(qualname + ".") else f"{qualname}.{part}"
        if qualname in modules:
            best = qualname
        else:
            break
    return best


def onnx_node_map(onnx_model, model) -> dict[str, list[str]]:
    """module qualified name -> exported ONNX node names in its own scope (not its children's)."""
    modules = {name for name, _ in model.named_modules()}
    mapping: dict[str, list[str]] = {}
    for node in onnx_model.graph.node:
        if node.op_type in ("Constant", "Identity"):
            continue
        mapping.setdefault(module_of_node(node, modules), []).append(node.name)
    return mapping


def model_recipe(meta) -> dict:
    """What exported_model needs, from an ONNX file's scaleprof metadata (scaleprof.export.read_metadata)."""
    record = meta.export or {}
    return {"spec": meta.spec.to_dict(), "seed": int(record.get("seed", 0)),
            "recalibrated_bn": bool(record.get("recalibrated_bn", False)),
            "resolution": int(record.get("resolution") or meta.spec.resolution)}


def exported_model(recipe: dict):
    """The fp32 CPU network the ONNX file was exported from: the spec's seeded weights, and BatchNorm
    statistics recalibrated exactly as scaleprof.export does for random-init weights, so the torch
    engine computes what the ONNX engines compute."""
    import torch

    from scaleprof.models import ModelSpec, build_model

    model = build_model(ModelSpec.from_dict(recipe["spec"]), device="cpu", seed=recipe["seed"])
    if recipe.get("recalibrated_bn"):
        from scaleprof.export.onnx_export import recalibrate_bn   # the export's own recipe, shared on purpose

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe["seed"])
            recalibrate_bn(model, min(recipe["resolution"], 128), recipe["seed"])
    return model.eval()


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

    def build(self, onnx_path: Path, spec: BuildSpec, directory: Path) -> Engine:
        from scaleprof.engines.cache import draft_manifest
        from scaleprof.export import image_input, load_model
        from scaleprof.export.onnx_io import metadata_from_model

        options = resolve_options(spec)
        onnx_model = load_model(onnx_path, load_weights=False)
        meta = metadata_from_model(onnx_model)
        if meta.spec is None:
            raise BadInput(f"{onnx_path} carries no scaleprof model spec; the torch backend rebuilds the model "
                           "from it: make the file with `scaleprof export`")
        input_name, _ = image_input(onnx_model, onnx_path)
        output_names = [o.name for o in onnx_model.graph.output]
        recipe = {**model_recipe(meta), "options": options, "input": input_name, "outputs": output_names}
        model = exported_model(recipe)
        Path(directory, ARTIFACT).write_text(json.dumps(recipe, indent=2, sort_keys=True))
        Path(directory, NODE_MAP).write_text(json.dumps(onnx_node_map(onnx_model, model), indent=1, sort_keys=True))
        manifest = draft_manifest(self, spec, onnx_path, ARTIFACT, model=meta.spec.label, input=input_name,
                                  node_map=NODE_MAP, **options)
        return TorchEngine(directory, manifest)

    def load(self, directory: Path, manifest: EngineManifest) -> Engine:
        return TorchEngine(directory, manifest)


class TorchEngine(Engine):
    def __init__(self, directory: Path, manifest: EngineManifest):
        super().__init__(directory, manifest)
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
        model = exported_model(self.recipe).to(device=self._torch_device(), dtype=self._dtype())
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

        from scaleprof.engines.shapes import check_accepts

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
        """One LayerEvent per module, as torch.profiler measured it (see the module docstring)."""
        import torch
        from torch.profiler import ProfilerActivity, profile, record_function

        if iterations <= 0:
            raise BadInput(f"iterations must be positive, got {iterations}")
        x = self.make_input(shape)
        model = self.model
        names = {id(m): name for name, m in model.named_modules()}
        stack: list = []

        def enter(module, _inputs):
            rf = record_function(MODULE_LABEL + names[id(module)])
            rf.__enter__()
            stack.append(rf)

        def leave(module, _inputs, _output):
            stack.pop().__exit__(None, None, None)

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.on_cuda else [])
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            self._sync()
            handles = [h for m in model.modules()
                       for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
            try:
                with profile(activities=activities) as prof:
                    for i in range(iterations):
                        with record_function(f"{ITER_LABEL}{i}"):
                            model(x)
                        self._sync()
            finally:
                for h in handles:
                    h.remove()
        node_map = json.loads((self.directory / NODE_MAP).read_text()) if (self.directory / NODE_MAP).is_file() else {}
        classes = {name: type(m).__name__ for name, m in model.named_modules()}
        events = module_events(prof.events(), iterations, self.on_cuda, node_map, classes)
        return LayerTrace(events, iterations, "torch.profiler")

    def _sync(self):
        if self.on_cuda:
            import torch

            torch.cuda.synchronize(self._torch_device())


def module_events(function_events, iterations: int, on_cuda: bool, node_map: dict, classes: dict
                  ) -> tuple[LayerEvent, ...]:
    """torch.profiler FunctionEvents -> one LayerEvent per module with its exclusive time per iteration:
    the operators it calls itself, not those of its child modules (see own_ms)."""
    def span_ms(evt) -> float:
        return (evt.device_time_total if on_cuda else evt.cpu_time_total) / 1e3

    def inner_modules(evt):
        """The nearest module ranges below ``evt`` (its direct child modules' calls)."""
        for child in evt.cpu_children:
            if child.name.startswith(MODULE_LABEL):
                yield child
            else:
                yield from inner_modules(child)

    def own_ms(evt) -> float:
        """The time of the operators ``evt`` runs itself: each child that is no module range counts
        whole (an aten op with what it calls), other ranges that hold module ranges are looked into.
        Time between operators (Python, the hooks) is no layer's: on CUDA it has no kernels anyway."""
        total = 0.0
        for child in evt.cpu_children:
            if child.name.startswith(MODULE_LABEL):
                continue
            total += own_ms(child) if next(inner_modules(child), None) is not None else span_ms(child)
        return total

    def iteration_of(evt) -> int | None:
        parent = evt.cpu_parent
        while parent is not None:
            if parent.name.startswith(ITER_LABEL):
                return int(parent.name[len(ITER_LABEL):])
            parent = parent.cpu_parent
        return None

    times: dict[str, list[float]] = {}
    for evt in sorted(function_events, key=lambda e: e.time_range.start):
        if not evt.name.startswith(MODULE_LABEL) or evt.device_type.name != "CPU":
            continue
        i = iteration_of(evt)
        if i is None or i >= iterations:
            continue
        name = evt.name[len(MODULE_LABEL):]
        times.setdefault(name, [0.0] * iterations)[i] += own_ms(evt)
    return tuple(
        LayerEvent(name=name or ROOT, op_type=classes.get(name, ""), times_ms=tuple(round(t, 6) for t in ts),
                   onnx_nodes=tuple(node_map.get(name, ())))
        for name, ts in times.items() if any(ts) or node_map.get(name))


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def merge_folded_norms(events, norms=None, convs=None) -> tuple[LayerEvent, ...]:
    """Give each BatchNorm module the exporter folded into a convolution to that convolution.

    Eager PyTorch runs BatchNorm as its own kernel, but the ONNX export folds it into the Conv that
    feeds it, so the norm module has no ONNX node and its time would map to nothing. The conv that
    feeds a norm is, in timm's blocks (conv -> bn [-> act]), the nearest earlier sibling module (same
    parent) in execution order; when that sibling is a convolution with ONNX nodes the two become one
    event, ``"<conv> + <norm>"``, with per-iteration times summed and the conv's ONNX nodes. A norm
    with ONNX nodes of its own (not folded) or without such a conv sibling is left as it is, as is
    every other event: the total time is unchanged.

    ``norms`` / ``convs``: module names of the normalisation / convolution modules (the profiler
    knows their classes); None: recognised by the event's class name (``op_type``)."""
    events = tuple(events)

    def is_norm(e) -> bool:
        return e.name in norms if norms is not None else "BatchNorm" in e.op_type

    def is_conv(e) -> bool:
        return e.name in convs if convs is not None else "Conv" in e.op_type

    folded: dict[int, list[int]] = {}          # conv event index -> norm event indices
    merged: set[int] = set()
    for i, event in enumerate(events):
        if event.onnx_nodes or event.name == ROOT or not is_norm(event):
            continue
        parent = _parent(event.name)
        j = next((j for j in range(i - 1, -1, -1) if events[j].onnx_nodes and events[j].name != ROOT
                  and _parent(events[j].name) == parent), None)
        if j is not None and is_conv(events[j]) and len(events[j].times_ms) == len(event.times_ms):
            folded.setdefault(j, []).append(i)
            merged.add(i)
    out = []
    for i, event in enumerate(events):
        if i in merged:
            continue
        parts = [event, *(events[k] for k in folded.get(i, ()))]
        if len(parts) > 1:
            event = LayerEvent(name=" + ".join(p.name for p in parts), op_type=" + ".join(p.op_type for p in parts),
                               times_ms=tuple(sum(ts) for ts in zip(*(p.times_ms for p in parts))),
                               onnx_nodes=event.onnx_nodes, opaque=event.opaque)
        out.append(event)
    return tuple(out)


# -- runners --------------------------------------------------------------------------------------
class CpuRunner:
    timing_method = "perf_counter"

    def __init__(self, fn, x, shape: ShapePoint):
        self.fn, self.x, self.shape = fn, x, shape

    def __call__(self) -> float:
        import torch

        with torch.inference_mode():
            start = time.perf_counter()
            self.fn(self.x)
            return (time.perf_counter() - start) * 1e3


class CudaEagerRunner:
    """CUDA events around one eager (or compiled) forward on the current stream."""
    timing_method = "cuda-events"

    def __init__(self, fn, x, shape: ShapePoint):
        import torch

        self.fn, self.x, self.shape = fn, x, shape
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self) -> float:
        import torch

        with torch.inference_mode():
            self.start.record()
            self.fn(self.x)
            self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end)


class CudaGraphRunner:
    """Captures one forward into a CUDA graph (after warm-up on a side stream, as the PyTorch docs
    require), then times each replay with CUDA events on the capture-compatible current stream."""
    timing_method = "cuda-graph+cuda-events"

    def __init__(self, fn, x, shape: ShapePoint, warmup: int = 3):
        import torch

        self.shape = shape
        self.x = x                                    # static input: the graph reads this memory
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    fn(self.x)
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = fn(self.x)                 # static output, kept alive with the graph
        torch.cuda.synchronize()
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self) -> float:
        self.start.record()
        self.graph.replay()
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end)
