"""Calibration files: versioned JSON, one per target and environment, in a per-user calibration store
($SCALEPROF_CACHE_DIR/calibrations, else ~/.cache/scaleprof/calibrations) or anywhere a path names.

    path = save(calibration)                   # into the store, replacing that target+environment's file
    calibration = find("cpu-ort")              # from the store (or find("cpu-ort", "some/path"))
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from scaleprof.core.files import read_limited, write_atomic
from scaleprof.core.memory import check_fits
from scaleprof.core.text import slug
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.predict.kernel_calibration import KernelCalibration, kernel_from_dict
from scaleprof.predict.kernel_model import KernelModel
from scaleprof.predict.network_check import NetworkCorrection
from scaleprof.predict.network_fit import BatchFit, Calibration
from scaleprof.predict.samples import cache_root
from scaleprof.predict.sweep_calibration import calibrate_source

MAX_CALIBRATION_BYTES = 1 << 20     # a calibration is a few coefficients per batch size: kilobytes
# A kernel calibration keeps every timed kernel: about 0.5 MB per minute of budget on a 2-core CPU.
MAX_KERNEL_CALIBRATION_BYTES = 256 << 20
JSON_EXPANSION = 10                 # memory parsed JSON takes per byte of text, at most (about)

FORMAT = "scaleprof-calibration"
FORMAT_VERSION = 1


def calibrations_dir() -> Path | None:
    """The per-user calibration store; None without a usable cache directory (no HOME, ...)."""
    root = cache_root()
    return root / "calibrations" if root is not None else None


def file_name(target: str, env_key: str) -> str:
    return f"{slug(target, 'target')}-{re.sub(r'[^0-9a-zA-Z]', '', env_key) or 'env'}.json"


def to_json(cal: Calibration) -> str:
    data = {"format": FORMAT, "version": FORMAT_VERSION, "target": cal.target, "env_key": cal.env_key,
            "environment": cal.environment, "target_config": cal.target_config, "families": list(cal.families),
            "models": list(cal.models), "source": cal.source, "created": cal.created,
            "fits": {k: v.to_dict() for k, v in cal.fits.items()}, "points": list(cal.points),
            "evaluation": list(cal.evaluation)}
    return json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"


def from_json(text: str, where: str = "calibration") -> Calibration:
    data = _versioned(text, where, "calibration", FORMAT, FORMAT_VERSION, "scaleprof calibrate")
    try:
        return Calibration(target=data["target"], env_key=data["env_key"],
                           fits={k: BatchFit.from_dict(v) for k, v in data["fits"].items()},
                           environment=data.get("environment") or {}, target_config=data.get("target_config") or {},
                           families=tuple(data["families"]), models=tuple(data["models"]),
                           points=tuple(data.get("points") or ()), evaluation=tuple(data.get("evaluation") or ()),
                           source=str(data.get("source", "")), created=float(data.get("created") or 0.0))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise BadInput(f"{where}: a damaged calibration file ({type(err).__name__}: {err})") from None


def save(cal: Calibration, directory: Path | None = None) -> Path:
    """Write the calibration into ``directory`` (default: the calibration store); returns its path."""
    directory = _store_or(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / file_name(cal.target, cal.env_key)
        write_atomic(path, to_json(cal))
    except OSError as err:
        raise EnvironmentProblem(f"{directory}: cannot write the calibration ({err.strerror or err})") from None
    return path


def load(path) -> Calibration:
    return from_json(_read_text(path, "calibration"), str(path))


def stored(directory: Path | None = None) -> list[Calibration]:
    directory = Path(directory) if directory is not None else calibrations_dir()
    found = []
    for path in sorted(directory.glob("*.json")) if directory is not None and directory.is_dir() else ():
        if path.name.startswith("kernels-"):
            continue                       # kernel calibrations: find_kernels reads them
        try:
            found.append(load(path))
        except BadInput:
            continue                       # another version or a stray file: not ours to read
    return found


def find(target: str, path=None, env_key: str | None = None) -> Calibration:
    """The calibration of ``target``: from ``path`` (a calibration file, a directory of them, or a sweep
    directory, calibrated on the fly) or the calibration store; the newest when several environments
    qualify, unless ``env_key`` picks one."""
    if path is not None and Path(path).is_file():
        cal = load(path)
        if cal.target != target:
            raise BadInput(f"{path}: a calibration of {cal.target!r}, not of {target!r}")
        return cal
    if path is not None and (Path(path) / "results.sqlite").is_file():
        return calibrate_source(path, target, env_key=env_key, with_evaluation=False)[0]
    if path is not None and not Path(path).is_dir():
        raise BadInput(f"{path}: no such calibration file or directory")
    candidates = [c for c in stored(path) if c.target == target and (env_key is None or c.env_key == env_key)]
    if not candidates:
        where = path or calibrations_dir() or "the calibration store (none: no usable HOME or cache variable)"
        have = sorted({c.target for c in stored(path)})
        raise BadInput(f"no calibration of target {target!r} in {where}"
                       + (f" (calibrated: {', '.join(have)})" if have else "")
                       + "; run `scaleprof calibrate DIR --target " + target + "` first")
    return max(candidates, key=lambda c: c.created)


KERNELS_FORMAT = "scaleprof-kernel-calibration"
KERNELS_VERSION = 1


def kernels_to_json(cal) -> str:
    """A kernel_calibration.KernelCalibration as JSON: its model and the timed kernels it was fitted to."""
    data = {"format": KERNELS_FORMAT, "version": KERNELS_VERSION, "target": cal.target, "env_key": cal.env_key,
            "environment": cal.environment, "target_config": cal.target_config, "source": cal.source,
            "created": cal.created, "graphs": cal.graphs, "seconds": cal.seconds, "model": cal.model.to_dict(),
            "rows": [[k.to_dict(), ms] for k, ms in cal.rows], "runs": [list(r) for r in cal.runs],
            "correction": cal.correction.to_dict() if cal.correction else None}
    return json.dumps(data, sort_keys=True, default=str) + "\n"


def kernels_from_json(text: str, where: str = "kernel calibration"):
    data = _versioned(text, where, "kernel calibration", KERNELS_FORMAT, KERNELS_VERSION,
                      "scaleprof calibrate --kernels")
    try:
        return KernelCalibration(
            target=data["target"], env_key=data["env_key"], model=KernelModel.from_dict(data["model"]),
            environment=data.get("environment") or {}, target_config=data.get("target_config") or {},
            rows=tuple((kernel_from_dict(k), float(ms)) for k, ms in data.get("rows") or ()),
            runs=tuple(tuple(r) for r in data.get("runs") or ()), graphs=int(data.get("graphs") or 0),
            seconds=float(data.get("seconds") or 0.0), created=float(data.get("created") or 0.0),
            source=str(data.get("source") or "kernels"),
            correction=NetworkCorrection.from_dict(data["correction"]) if data.get("correction") else None)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise BadInput(f"{where}: a damaged kernel calibration file ({type(err).__name__}: {err})") from None


def _store_or(directory) -> Path:
    """``directory``, else the calibration store; BadInput when neither is there (no usable HOME)."""
    directory = Path(directory) if directory is not None else calibrations_dir()
    if directory is None:
        raise BadInput("no calibration store: HOME, XDG_CACHE_HOME and SCALEPROF_CACHE_DIR are unset, empty or "
                       "relative; give a directory (-o DIR) or set SCALEPROF_CACHE_DIR")
    return directory


def save_kernels(cal, directory: Path | None = None) -> Path:
    directory = _store_or(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / ("kernels-" + file_name(cal.target, cal.env_key))
        write_atomic(path, kernels_to_json(cal))
    except OSError as err:
        raise EnvironmentProblem(f"{directory}: cannot write the kernel calibration ({err.strerror or err})") from None
    return path


def load_kernels(path):
    return kernels_from_json(_read_text(path, "kernel calibration", MAX_KERNEL_CALIBRATION_BYTES), str(path))


def find_kernels(target: str, path=None, required: bool = True):
    """The kernel calibration of ``target``: ``path`` (a file, or a directory of them) or the store, the
    newest when several environments qualify. None when there is none and not ``required``."""
    if path is not None and Path(path).is_file():
        cal = load_kernels(path)
        if cal.target != target:
            raise BadInput(f"{path}: a kernel calibration of {cal.target!r}, not of {target!r}")
        return cal
    directory = Path(path) if path is not None else calibrations_dir()
    found, problems = [], []
    for file in sorted(directory.glob("kernels-*.json")) if directory is not None and directory.is_dir() else ():
        try:
            found.append(load_kernels(file))
        except BadInput as err:
            problems.append(str(err))
    found = [c for c in found if c.target == target]
    if not found:
        if problems:                 # a file of this target may be among them: say why it was not read
            raise BadInput(f"no readable kernel calibration of target {target!r}: {problems[0]}")
        if not required:
            return None
        raise BadInput(f"no kernel calibration of target {target!r} in {directory or 'the calibration store'}; run "
                       f"`scaleprof calibrate --kernels --target {target}` first")
    return max(found, key=lambda c: c.created)


def _versioned(text: str, where: str, what: str, fmt: str, version: int, command: str) -> dict:
    """The JSON object of a calibration file of format ``fmt`` at ``version``; BadInput otherwise."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise BadInput(f"{where}: not a scaleprof {what} ({err})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise BadInput(f"{where}: not a scaleprof {what} file")
    if data.get("version") != version:
        raise BadInput(f"{where}: {what} format version {data.get('version')} is not the version this "
                       f"scaleprof reads ({version}); run `{command}` again")
    return data


def _read_text(path, what: str, limit: int = MAX_CALIBRATION_BYTES) -> str:
    """A calibration file's text, read within ``limit`` bytes; BadInput when it cannot be read."""
    try:
        if Path(path).is_file():            # (a larger file than ``limit`` is refused for its size below)
            check_fits(JSON_EXPANSION * min(Path(path).stat().st_size, limit), f"reading {path}",
                       f"the parsed {what}", "calibrate with a smaller --budget")
        return read_limited(Path(path), limit, what).decode("utf-8", errors="replace")
    except OSError as err:
        raise BadInput(f"{path}: cannot read the {what} ({err.strerror or err})") from None
