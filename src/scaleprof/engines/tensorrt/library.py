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

    def api_generation(self, version: str) -> int:
        """The TensorRT major version whose semantics apply (precision flags, strong typing)."""
        return self.api_major if self.api_major is not None else parse_version(version)[0]


TENSORRT = TensorRTLibrary(module="tensorrt", title="TensorRT", install_hint=INSTALL_HINT)


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
    """One ILogger per library module and process (TensorRT keeps the first logger it is given); it
    keeps warnings and errors so a failure can be reported in one line (``last_error()``)."""
    if id(trt) not in _LOGGERS:
        class _Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.messages: list[tuple[int, str]] = []

            def log(self, severity, msg):
                level = int(severity)
                if level <= 2:          # INTERNAL_ERROR 0, ERROR 1, WARNING 2
                    self.messages = self.messages[-99:] + [(level, str(msg))]

            def last_error(self) -> str:
                errors = [m for lvl, m in self.messages if lvl <= 1]
                return errors[-1] if errors else "no error message from TensorRT"

        _LOGGERS[id(trt)] = _Logger()
    return _LOGGERS[id(trt)]


def profiler_for(trt, sink):
    """An IProfiler that hands every ``report_layer_time(name, ms)`` to ``sink.report``
    (scaleprof.engines.tensorrt.layer_times.LayerTimes)."""
    class _Profiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name, ms):
            sink.report(layer_name, ms)

    return _Profiler()
