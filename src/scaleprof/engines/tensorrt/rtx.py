"""The TensorRT-RTX backend (``tensorrt-rtx``): the TensorRT backend with the ``tensorrt_rtx`` module.

TensorRT-RTX splits the build in two: an ahead-of-time (AOT) build that needs no GPU and writes a
plan for the compute capabilities it targets (by default every RTX-class one from Ampere on), and
a just-in-time step on the GPU that runs it. So ``scaleprof build --backend tensorrt-rtx`` writes
the plan, its manifest and its layer file on any x86-64 Linux or Windows host; profiling needs an
RTX-class GPU and says so in one line where there is none (TensorRTEngine.load).

What differs from TensorRT 10/11 is in the library constant (TENSORRT_RTX: TensorRT 11's
semantics, no timing cache, no trtexec) and here:
- option ``compute_capabilities``: ``default`` (the library's own set), ``current`` (the GPU
  here) or a list such as ``8.6,8.9,12.0``; the cache key names the library, its version and
  these targets, not the host's GPU;
- the plan is not loaded after the build (it may target other GPUs than the one here, if any), so
  the activation memory per profile is the one the builder logged (tensorrt.build_log) and there
  is no inspector JSON: the layer file holds the layers.

Polygraphy's loaders (POLYGRAPHY_USE_TENSORRT_RTX=1) build the same plans, but choose the module
once per process from that variable, ignore add_optimization_profile's -1, raise "Could not parse
ONNX correctly" without the node's name and log to stdout, so scaleprof keeps its own build steps.
"""

from __future__ import annotations

from scaleprof.engines.base import BuildSpec
from scaleprof.engines.devices import compute_capability, torch_sees_a_gpu
from scaleprof.engines.tensorrt.backend import TensorRTBackend
from scaleprof.engines.tensorrt.library import TENSORRT_RTX, import_library, library_importable
from scaleprof.engines.tensorrt.options import key_parts, trt_options
from scaleprof.errors import BadInput, EnvironmentProblem

NO_GPU = "none (ahead-of-time build)"
LIBRARY_DEFAULT = "default"          # the library's own targets: RTX-class GPUs from Ampere on


class TensorRTRTXBackend(TensorRTBackend):
    name = "tensorrt-rtx"
    library = TENSORRT_RTX
    install_hint = TENSORRT_RTX.install_hint

    def available(self) -> bool:
        """The module imports: building needs no GPU (running does: TensorRTEngine.load)."""
        return library_importable(self.library)

    def unavailable_reason(self) -> str:
        return self.install_hint

    def device_name(self, device: str) -> str:
        """The GPU's name where there is one (measurements name it), else NO_GPU."""
        index = self.cuda_index(device)
        if not torch_sees_a_gpu():
            return NO_GPU
        import torch

        return torch.cuda.get_device_name(index)

    def target_names(self, spec: BuildSpec) -> tuple[str, ...]:
        """The compute capabilities the plan targets, as the key and the manifest name them."""
        wanted = trt_options(spec).compute_capabilities
        if wanted == ("current",):
            here = compute_capability(self.cuda_index(spec.device)) if torch_sees_a_gpu() else ""
            if not here:
                raise EnvironmentProblem("compute_capabilities=current needs a GPU here: name the targets "
                                         "(e.g. 8.6,8.9) or keep the library's default")
            return (here,)
        return wanted or (LIBRARY_DEFAULT,)

    def targets(self, spec: BuildSpec) -> tuple[str, ...]:
        """ComputeCapability members for target_names; () for the library's default."""
        names = self.target_names(spec)
        if names == (LIBRARY_DEFAULT,):
            return ()
        trt = import_library(self.library)
        known = {f"{m[2:-1]}.{m[-1]}": m for m in trt.ComputeCapability.__members__ if m.startswith("SM")}
        missing = [n for n in names if n not in known]
        if missing:
            offered = ", ".join(sorted(known, key=lambda v: tuple(int(p) for p in v.split("."))))
            raise BadInput(f"compute capability {', '.join(missing)} is not a target of {self.library.title} "
                           f"{trt.__version__} (it builds for {offered})")
        return tuple(known[n] for n in names)

    def target_extras(self, spec: BuildSpec) -> dict:
        return {"compute_capabilities": list(self.target_names(spec))}

    def build_key_parts(self, spec: BuildSpec) -> dict:
        """The library, its version and the targets instead of the host's GPU; options it has no
        use for are refused here, before anything is built."""
        opts = trt_options(spec)
        if opts.timing_cache:
            raise BadInput(f"{self.library.title} keeps no timing cache: drop the timing_cache option")
        parts = key_parts(spec, trt_version=self.build_version(opts), gpu_name="", builder="python-api")
        del parts["gpu_name"], parts["compute_capability"]
        self.targets(spec)                       # an unknown target is refused here too
        return {**parts, "library": self.library.module, "compute_capabilities": list(self.target_names(spec))}

    def can_load_plans(self) -> bool:
        """Never at build time: the plan targets compute capabilities, not necessarily the GPU
        here (an H100's 9.0 is none of the default ones), and without a GPU it cannot be loaded."""
        return False
