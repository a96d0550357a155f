"""Which predictor answers a zoo query (`predict MODEL --strategy S --scale s --target T`), and why.

One predictor per target: where the target has a kernel calibration (ONNX Runtime CPU targets), the
kernel model answers zoo configurations exactly as it answers ONNX files, with the network correction a
sweep fitted into that calibration (`calibrate --kernels --target T DIR`). The group model of a sweep
calibration answers where the kernel model cannot be calibrated (GPU, TensorRT and torch targets) and on
a CPU target that has no kernel calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scaleprof.errors import BadInput
from scaleprof.predict.calibration_store import find, find_kernels, stored
from scaleprof.predict.kernel_calibration import target_definition

KERNEL_MODEL = "kernel model"
GROUP_MODEL = "group model"


@dataclass(frozen=True)
class Choice:
    predictor: str               # KERNEL_MODEL or GROUP_MODEL
    reason: str                  # why this one answered, one clause
    calibration: object          # a KernelCalibration (kernel model) or a Calibration (group model)

    @property
    def label(self) -> str:
        """The predictor as the output names it ("kernel model + correction from sweep out/zoo")."""
        correction = getattr(self.calibration, "correction", None)
        if self.predictor != KERNEL_MODEL or correction is None:
            return self.predictor
        return f"{KERNEL_MODEL} + correction from sweep {correction.source or '(not recorded)'}"


def kernel_calibratable(config: dict) -> str | None:
    """None when `calibrate --kernels` can time the target ``config`` describes; else why not."""
    backend, device = config.get("backend"), config.get("device") or "cpu"
    if backend != "ort" or device != "cpu":
        return f"it runs {backend or '?'} on {device}; kernel calibration times ONNX Runtime's CPU kernels"
    try:
        target_definition(str(config.get("name")))
    except BadInput:
        return "kernel calibration knows the cpu-ort presets and cpu-ort-<N>t only"
    return None


def _kernel_calibration(target: str, path) -> tuple:
    """(the target's kernel calibration at ``path`` or in the store, or None; why none could be read, or "").
    A path that holds another kind of calibration (a sweep calibration file, a sweep directory) holds none."""
    try:
        return find_kernels(target, path, required=False), ""
    except BadInput as err:
        return None, "" if path is not None and Path(path).is_file() else str(err)


def _sweep_calibration_in_store(target: str, path):
    """The target's newest sweep calibration in the store (None when ``path`` names another place)."""
    found = [c for c in stored() if c.target == target] if path is None else []
    return max(found, key=lambda c: c.created, default=None)


def choose_predictor(target: str, path=None) -> Choice:
    """The predictor for zoo queries on ``target`` from the calibration at ``path`` (a file or directory)
    or in the calibration store. BadInput when the target has neither calibration."""
    kernels, unreadable = _kernel_calibration(target, path)
    if kernels is not None:
        reason = f"{target} has a kernel calibration ({kernels.graphs} timed graphs, {len(kernels.rows)} kernels)"
        sweep = _sweep_calibration_in_store(target, path)
        if sweep is not None:
            reason += "; its sweep calibration (group model) is not used: one model answers every network here"
            if kernels.correction is None:
                reason += (f" (`scaleprof calibrate --kernels --target {target} {sweep.source or 'SWEEP'}` fits the "
                           "kernel model's network correction on that sweep's measurements)")
        return Choice(KERNEL_MODEL, reason, kernels)
    try:
        sweep = find(target, path)
    except BadInput as err:
        if kernel_calibratable(_definition(target)) is not None:
            raise
        if unreadable:                      # a kernel calibration of this target may be the file it names
            raise BadInput(unreadable) from None
        if path is None:
            raise BadInput(f"{err}, or `scaleprof calibrate --kernels --target {target}` for the kernel model "
                           "(any network)") from None
        raise
    config = sweep.target_config if (sweep.target_config or {}).get("backend") else _definition(target)
    why_not = kernel_calibratable(config)
    if why_not is not None:
        reason = f"the kernel model cannot be calibrated on {target} ({why_not})"
    elif unreadable:
        reason = unreadable
    else:
        where = f"{target} has no kernel calibration" if path is None else f"{path} holds no kernel calibration"
        reason = f"{where} (`scaleprof calibrate --kernels --target {target}` would let the kernel model answer)"
    return Choice(GROUP_MODEL, f"{reason}; sweep calibration from {sweep.source or '?'}", sweep)


def _definition(target: str) -> dict:
    try:
        return target_definition(target)
    except BadInput:
        return {"name": target}
