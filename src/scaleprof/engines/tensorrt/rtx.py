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
  the activation and weights memory are the ones the builder logged (tensorrt.build_log), and the
  inspector JSON is made from the builder's own layer report (tensorrt.engine_layers);
- the targets really built are read from the plan: its graph-compiler sections name their
  ``accelerators={sm80 ...}``. The library drops a requested target it cannot build for (an fp8
  network keeps only sm89 and later), so the manifest has ``built_targets`` and ``dropped_targets``
  beside the requested ``compute_capabilities``; the library's default builds ``sm80``, which
  runs on Ampere and later;
- the cache key leaves the device out (``cuda:3`` builds what ``cuda`` builds), and with it the
  host's GPU, so a cache hit needs neither torch nor a GPU.

Polygraphy's loaders (POLYGRAPHY_USE_TENSORRT_RTX=1) build the same plans, but choose the module
once per process from that variable, ignore add_optimization_profile's -1, raise "Could not parse
ONNX correctly" without the node's name and log to stdout, so scaleprof keeps its own build steps.
"""

from __future__ import annotations

import re
from pathlib import Path

from scaleprof.engines.base import BuildSpec
from scaleprof.engines.devices import compute_capability, torch_sees_a_gpu
from scaleprof.engines.tensorrt.backend import TensorRTBackend
from scaleprof.engines.tensorrt.library import TENSORRT_RTX, import_library, library_importable
from scaleprof.engines.tensorrt.options import key_parts, trt_options
from scaleprof.errors import BadInput, EnvironmentProblem

NO_GPU = "none (ahead-of-time build)"
LIBRARY_DEFAULT = "default"          # the library's own targets: RTX-class GPUs from Ampere on
_ACCELERATORS = re.compile(rb"accelerators=\{((?:sm\d+ ?)+)\}")


def _version(target: str) -> tuple[int, ...]:
    return tuple(int(p) for p in target.split("."))


def plan_targets(plan: bytes) -> list[str] | None:
    """The compute capabilities a plan holds code for ('8.6', ...), from its graph-compiler
    sections' ``accelerators={sm86 sm89 }``; None when the plan names none."""
    found = {sm.decode()[2:] for m in _ACCELERATORS.finditer(plan) for sm in m.group(1).split()}
    if not found:
        return None
    return sorted((f"{v[:-1]}.{v[-1]}" for v in found), key=_version)


class TensorRTRTXBackend(TensorRTBackend):
    name = "tensorrt-rtx"
    library = TENSORRT_RTX
    install_hint = TENSORRT_RTX.install_hint
    device_bound = False

    def available(self) -> bool:
        """The module imports: building needs no GPU (running does: TensorRTEngine.load)."""
        return library_importable(self.library)

    def unavailable_reason(self) -> str:
        return self.install_hint

    def run_refusal(self, device: str) -> str | None:
        """No GPU here: the plan would build (it needs none), then fail to run."""
        self.cuda_index(device)
        if torch_sees_a_gpu():
            return None
        return (f"running a {self.library.title} engine needs {self.library.runs_on}, and this host has none: "
                f"`scaleprof build --backend {self.name}` builds its plan here, profile it on the GPU's host")

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
        known = self.known_targets()
        missing = [n for n in names if n not in known]
        if missing:
            raise BadInput(f"compute capability {', '.join(missing)} is not a target of {self.library.title} "
                           f"{self.version()} (it builds for {', '.join(known)}; for 7.5 not networks with fp32 GEMMs)")
        return tuple(f"SM{n.replace('.', '')}" for n in names)

    def target_extras(self, spec: BuildSpec, plan_path: Path) -> dict:
        """The targets asked for, those the plan holds, and those asked for that it dropped. The
        library's default is every target from Ampere (8.0) on, served by the lowest one built: an
        fp8 plan built for 8.9 drops 8.0 and 8.6."""
        asked = list(self.target_names(spec))
        built = plan_targets(Path(plan_path).read_bytes())
        if built is None:
            return {"compute_capabilities": asked, "built_targets": None, "dropped_targets": None}
        if asked == [LIBRARY_DEFAULT]:
            lowest = _version(built[0])
            dropped = [t for t in self.known_targets() if (8, 0) <= _version(t) < lowest]
        else:
            dropped = [t for t in asked if t not in built]
        return {"compute_capabilities": asked, "built_targets": built, "dropped_targets": dropped}

    def known_targets(self) -> list[str]:
        """The compute capabilities the library builds for ('7.5', '8.0', ...), in order."""
        members = import_library(self.library).ComputeCapability.__members__
        return sorted((f"{m[2:-1]}.{m[-1]}" for m in members if m.startswith("SM")), key=_version)

    def key_device(self, spec: BuildSpec) -> dict:
        """An ahead-of-time plan depends on its targets (in build_key_parts), not on the device."""
        self.cuda_index(spec.device)
        return {"device": "cuda", "device_name": "ahead-of-time build"}

    def build_key_parts(self, spec: BuildSpec) -> dict:
        """The library, its version and the targets instead of the host's GPU; options it has no
        use for are refused here, before anything is built."""
        opts = trt_options(spec)
        self.check_options(opts)
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
