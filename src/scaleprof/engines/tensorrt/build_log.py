"""What a TensorRT library says while it builds, kept for one build at a time (no TensorRT import).

TensorRT keeps the first logger it is given, so scaleprof holds one logger per library and process
(scaleprof.engines.tensorrt.library.logger_for) and clears its BuildLog when a build starts: a
failure reports its own first error, never an earlier build's. Besides errors and warnings the log
keeps what the builder says about memory. TensorRT-RTX's ahead-of-time builder logs, per
optimisation profile, ``Constructing optimization profile number K [k/N].`` (VERBOSE) and, once
that profile's memory is planned, ``Total Activation Memory: N bytes`` (INFO); then, once per plan,
``Total Weights Memory: N bytes``. With ProfilingVerbosity.DETAILED it ends with one VERBOSE
``Layers:`` message listing the engine's layers after fusion (scaleprof.engines.tensorrt.engine_layers).
"""

from __future__ import annotations

import re

ERROR, WARNING = 1, 2                 # tensorrt.ILogger.Severity: INTERNAL_ERROR 0 .. VERBOSE 4
_PROFILE_START = re.compile(r"Constructing optimization profile number (\d+)")
_ACTIVATION = re.compile(r"Total Activation Memory: (\d+) bytes")
_LAYER_REPORT = "Layers:\n"
_WEIGHTS = re.compile(r"Total Weights Memory: (\d+) bytes")
# Without a CUDA driver the library follows a failure with these; they never say what went wrong.
_NO_DRIVER = re.compile(r"cudaError 35|CUDA driver version is insufficient")


class BuildLog:
    """The current build's errors and warnings (the last ``keep``) and its memory lines."""

    def __init__(self, keep: int = 100):
        self.keep = keep
        self.reset()

    def reset(self) -> None:
        self.messages: list[tuple[int, str]] = []
        self.activation: dict[int, int] = {}
        self.weights_bytes: int | None = None
        self.layer_report: str | None = None
        self._profile: int | None = None
        self._unlabelled = 0

    def record(self, severity: int, text: str) -> None:
        if severity <= WARNING:
            self.messages = self.messages[-(self.keep - 1):] + [(severity, text)]
        elif text.startswith(_LAYER_REPORT):
            self.layer_report = text
        elif started := _PROFILE_START.search(text):
            self._profile = int(started.group(1))
        elif found := _ACTIVATION.search(text):
            # without the VERBOSE marker, the lines come in profile order
            index = self._profile if self._profile is not None else self._unlabelled
            self._unlabelled += 1
            self.activation[index] = int(found.group(1))
        elif found := _WEIGHTS.search(text):
            self.weights_bytes = int(found.group(1))

    def errors(self) -> list[str]:
        return [text for severity, text in self.messages if severity <= ERROR]

    def cause(self) -> str:
        """The first error of this build that says what went wrong."""
        errors = self.errors()
        telling = [e for e in errors if not _NO_DRIVER.search(e)]
        return (telling or errors or ["no error message from TensorRT"])[0]

    def activation_bytes(self) -> list[int]:
        """Activation memory per optimisation profile in profile order ([] when none was logged)."""
        return [self.activation[k] for k in sorted(self.activation)]
