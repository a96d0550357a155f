"""What runs on the Ray hosts: plain functions (the driver wraps them with ray.remote), so this
module imports no Ray and the hosts need only scaleprof installed.

- ``probe``: a target's environment, as the host that serves it sees it.
- ``prepare``: one network's spec, counts and export, shipped as bytes through the object store.
- ``measure``: one bundle of groups through the runner's PointGroup, on the target's host; the
  records come back to the driver, which alone writes the store.

Each host keeps its caches (exports it received, engines it built, counts, roofline peaks) under
one directory (``CacheLocation``), so that a re-run builds nothing there.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from scaleprof import __version__
from scaleprof.core.files import user_cache_dir, write_atomic
from scaleprof.errors import EnvironmentProblem, ScaleprofError
from scaleprof.sweep.config import Point, SweepConfig, Target
from scaleprof.sweep.executor import SweepResult, SweepRun
from scaleprof.sweep.executors.plan import ONNX_DIR, NetworkPlan, Prepared, PreparedStages, prepare_network
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.runner import PointGroup
from scaleprof.sweep.stages import Stages

CACHE_VARIABLE = "SCALEPROF_CACHE"          # a host's cache directory (default ~/.cache/scaleprof)
# Measurements run in workers of their own (a runtime environment of their own), never in one that
# prepared a network with Ray's one-thread setting (below).
MEASURE_RUNTIME_ENV = {"env_vars": {"SCALEPROF_RAY_TASK": "measure"}}


@dataclass(frozen=True)
class CacheLocation:
    """The driver's output directory serves as the cache on the driver's machine; any other host
    uses $SCALEPROF_CACHE/sweep (default ~/.cache/scaleprof/sweep)."""

    driver_host: str
    driver_out: str

    def root(self) -> Path:
        if socket.gethostname() == self.driver_host:
            return Path(self.driver_out)

        given = os.environ.get(CACHE_VARIABLE)
        root = Path(given).expanduser() if given else user_cache_dir()
        if root is None:
            raise EnvironmentProblem(f"host {socket.gethostname()}: no cache directory for the sweep's files "
                                     f"(HOME and XDG_CACHE_HOME unset or relative): set {CACHE_VARIABLE}")
        return root / "sweep"


def probe(stages: Stages, target: Target) -> dict:
    """{"env": (key, environment), "host", "version"}, or {"error", "host"} when this host cannot
    measure the target (its backend is missing here)."""
    host = socket.gethostname()
    try:
        return {"env": stages.environment(target), "host": host, "version": __version__}
    except ScaleprofError as err:
        return {"error": str(err), "host": host}


@dataclass
class ShippedNetwork:
    """A prepared network on its way to the measuring hosts: the ONNX file travels as bytes."""

    prepared: Prepared
    onnx_name: str
    onnx_bytes: bytes | None          # None: no file to ship (the stages made none)

    def unpack(self, onnx_dir: Path) -> Prepared:
        """Write the file into this host's export cache (once) and point the network at it."""
        path = onnx_dir / self.onnx_name
        if self.onnx_bytes is not None and not path.is_file():
            onnx_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(path, self.onnx_bytes)
        self.prepared.onnx_path = path
        return self.prepared


def prepare(stages: Stages, plan: NetworkPlan, cache: CacheLocation) -> ShippedNetwork | None:
    """None when a stage fails: the measuring host then runs it itself and records the error."""
    root = cache.root()
    try:
        stages.open(root)
        prepared = prepare_network(stages, plan, root)
    except Exception:  # noqa: BLE001 - reported by the group that runs the stage again
        return None
    path = prepared.onnx_path
    return ShippedNetwork(prepared, path.name, path.read_bytes() if path.is_file() else None)


@dataclass
class BundleOutcome:
    """What one bundle's task returns: the host's environment and one record per point."""

    env: tuple[str, dict] | None
    records: list[PointResult] = field(default_factory=list)
    reused: set[str] = field(default_factory=set)           # point keys stored from an earlier measurement
    stage_seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""                                           # the host cannot measure the target


class _Collector:
    """Stands in for the store on a host: keeps the records for the driver."""

    def __init__(self):
        self.records: list[PointResult] = []
        self.reused: set[str] = set()

    def put_point(self, rec: PointResult, sweep_id=None, force: bool = False) -> bool:
        self.records.append(rec)
        return True

    def is_measured(self, point_key: str, target: str, env_key: str) -> bool:
        return False                 # the driver's store decides when it records


class _Quiet:
    """No display on a host: the driver shows each point as it records it."""

    def show(self, point, stage: str) -> None:
        pass

    def advance(self, point, latency, failed=None) -> None:
        pass

    def close(self) -> None:
        pass


class _HostGroup(PointGroup):
    def store_ok(self, point, measured, reused: bool = False) -> None:
        if reused:
            self.sweep.store.reused.add(point.key)
        super().store_ok(point, measured, reused)


def measure(stages: Stages, config: SweepConfig, groups: list[list[Point]], force: bool, cache: CacheLocation,
            *shipped: ShippedNetwork | None) -> BundleOutcome:
    """Run ``groups`` (one bundle) here with the prepared networks; nothing is stored here."""
    _threads_of_a_local_run()
    root = cache.root()
    staged = PreparedStages(stages, [s.unpack(root / ONNX_DIR) for s in shipped if s is not None])
    staged.open(root)
    target = config.target(groups[0][0].target)
    try:
        env = staged.environment(target)
    except ScaleprofError as err:
        return BundleOutcome(None, error=f"{err} (on Ray host {socket.gethostname()})")
    collector = _Collector()
    result = SweepResult(total=0, skipped=0, measured=0, failed=0, reused=0, seconds=0.0)
    sweep = SweepRun(config, staged, collector, 0, {target.name: env}, root, force, set(), _Quiet(), result)
    for group in groups:
        _HostGroup(sweep, group).run()
    return BundleOutcome(env, collector.records, collector.reused, result.stage_seconds)


def _threads_of_a_local_run() -> None:
    """Ray sets OMP_NUM_THREADS, when the worker's environment has none, to the CPUs a task reserves:
    1 for a measurement, which reserves none. torch would keep that one thread for the worker's life;
    a measurement runs with the threads a local sweep has (the target's ``threads``, else the
    runtime's default), so the variable goes unless the host's own environment set it."""
    if "OMP_NUM_THREADS" in os.environ and "OMP_NUM_THREADS" not in _environment_at_start():
        del os.environ["OMP_NUM_THREADS"]


def _environment_at_start() -> set[str]:
    """The names in this process's environment when it started (Linux); elsewhere, all of today's
    but Ray's one-thread setting."""
    try:
        names = Path("/proc/self/environ").read_bytes().split(b"\0")
    except OSError:
        return {k for k, v in os.environ.items() if not (k == "OMP_NUM_THREADS" and v == "1")}
    return {n.split(b"=", 1)[0].decode(errors="replace") for n in names if n}
