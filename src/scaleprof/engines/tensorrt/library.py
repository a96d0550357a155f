"""The first step of every TensorRT path: which Python module provides TensorRT, and importing it.

A ``TensorRTLibrary`` names the module and what differs between the libraries that share
TensorRT's Python API: NVIDIA's ``tensorrt`` (versions 10 and 11), and later ``tensorrt_rtx``
(TensorRT-RTX: TensorRT 11 semantics whatever its own version number says, no timing cache). The
backend, its engines and the Python-API build take one, so a new library is a new constant here
and a backend subclass naming it (scaleprof.engines.tensorrt.backend), not a copy of the code.

``import_library`` is the only place such a module is imported; without it, it raises one line
saying how to install it. The objects TensorRT wants subclasses of its own interfaces for (the
logger, a per-layer profiler) are made here too, from the imported module.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from scaleprof.core.text import first_line
from scaleprof.engines.tensorrt.build_log import BuildLog
from scaleprof.errors import EnvironmentProblem

INSTALL_HINT = ("pip install 'scaleprof[tensorrt]' on a host with an NVIDIA GPU, "
                "or run scaleprof in the GPU image (docker/Dockerfile)")


def parse_version(text: str) -> tuple[int, int, int]:
    """'10.5.0.18' / '11.0.0' -> (10, 5, 0)."""
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise EnvironmentProblem(f"cannot read the TensorRT version {text!r}")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


@dataclass(frozen=True)
class TensorRTLibrary:
    """A Python module with TensorRT's API, and what scaleprof must know about it."""

    module: str                       # the import name, e.g. "tensorrt"
    title: str                        # how messages name it, e.g. "TensorRT"
    install_hint: str                 # what to install when the module is missing
    timing_cache: bool = True         # builds read and write a persistent timing cache
    trtexec: bool = True              # trtexec builds and times its engines
    api_major: int | None = None      # the TensorRT API generation it follows, when its version does not say
    builds_without_gpu: bool = False  # an ahead-of-time builder: plans are built on any host
    runs_on: str = "an NVIDIA GPU"    # what running its plans needs, for the one-line refusal
    runtime_cache: bool = False       # IRuntimeCache: kernels compiled on the GPU, kept in a file

    def api_generation(self, version: str) -> int:
        """The TensorRT major version whose semantics apply (precision flags, strong typing)."""
        return self.api_major if self.api_major is not None else parse_version(version)[0]


TENSORRT = TensorRTLibrary(module="tensorrt", title="TensorRT", install_hint=INSTALL_HINT)

# TensorRT-RTX: networks strongly typed with no precision flags (TensorRT 11's semantics); its
# timing cache is deprecated and does nothing, and reading one makes the build look for a GPU; it
# ships no trtexec; its builder needs no GPU and targets compute capabilities instead.
TENSORRT_RTX = TensorRTLibrary(
    module="tensorrt_rtx", title="TensorRT-RTX",
    install_hint="pip install 'scaleprof[tensorrt-rtx]' (x86-64 Linux or Windows; building needs no GPU)",
    timing_cache=False, trtexec=False, api_major=11, builds_without_gpu=True, runtime_cache=True,
    runs_on="an RTX-class NVIDIA GPU (Ampere or later)")


def import_library(library: TensorRTLibrary = TENSORRT):
    """The library's module, or EnvironmentProblem with one line on how to install it."""
    try:
        trt = importlib.import_module(library.module)
    except Exception as err:            # ImportError, or a stub / missing libnvinfer failing at import
        reason = first_line(f"{type(err).__name__}: {err}", 120)
        raise EnvironmentProblem(f"{library.title} is not installed here ({reason}): {library.install_hint}") from None
    if not hasattr(trt, "Builder"):
        raise EnvironmentProblem(f"the installed {library.module!r} package is a stub without the runtime: "
                                 f"{library.install_hint}")
    return trt


def library_importable(library: TensorRTLibrary = TENSORRT) -> bool:
    try:
        import_library(library)
    except EnvironmentProblem:
        return False
    return True


_LOGGERS: dict[int, object] = {}


def logger_for(trt):
    """One ILogger per library module and process (TensorRT keeps the first logger it is given).
    Its ``book`` (a BuildLog) holds the current build's errors and memory lines: builds clear it
    first, so ``last_error()`` is the first telling error since then."""
    if id(trt) not in _LOGGERS:
        class _Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.book = BuildLog()

            def log(self, severity, msg):
                self.book.record(int(severity), str(msg))

            def last_error(self) -> str:
                return self.book.cause()

        _LOGGERS[id(trt)] = _Logger()
    return _LOGGERS[id(trt)]


def profiler_for(trt, sink):
    """An IProfiler that hands every ``report_layer_time(name, ms)`` to ``sink.report``
    (scaleprof.engines.tensorrt.profiler.LayerTimes)."""
    class _Profiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name, ms):
            sink.report(layer_name, ms)

    return _Profiler()
