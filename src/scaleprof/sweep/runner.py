"""The sweep runner: every grid point through the stages (``STAGES``) into the results store.

- ``run_sweep`` checks every model and target first, opens the store, leaves out the points already
  measured for the same target and environment (unless ``force``; with ``remeasure_noisy`` those
  whose timing was flagged as contended are measured again) and groups the rest: points that
  share a model spec, precision and target share one export and one engine (its shape set holds
  every batch size and resolution of the group). The export and engine caches live in the output
  directory, so a re-run builds nothing.
- ``PointGroup`` runs one group. Each step is a method; ``PointGroup.stage`` times it under its own
  stage name (``SweepResult.stage_seconds``, and each stored point's ``stage_seconds``) and names
  that stage in the error of a group that fails in it.
- Each point is stored in its own transaction the moment it is measured. A failing point (in any
  stage) is recorded with its error and the sweep goes on; a failing store (disk full) stops the
  sweep with one line, leaving what was stored intact.

The pipeline itself is a ``Stages`` object (scaleprof.sweep.stages); where the groups run, an
``Executor`` (scaleprof.sweep.executor; ``InOrderExecutor`` here); what the user sees while it
runs is scaleprof.sweep.progress.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from scaleprof.core.text import first_line
from scaleprof.errors import ScaleprofError
from scaleprof.profile.types import LatencyStats, LayerReport
from scaleprof.sweep.config import Point, SweepConfig
from scaleprof.sweep.executor import STAGES, Executor, Measured, SweepResult, SweepRun
from scaleprof.sweep.progress import Progress
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.rounds import measure_in_rounds
from scaleprof.sweep.stages import LayerInputs, Stages, UpstreamStages
from scaleprof.sweep.store import STORE_NAME, Store, StoreError


class InOrderExecutor(Executor):
    """The default: every group here, in order (preparation in worker processes and targets on Ray
    hosts are in scaleprof.sweep.executors)."""

    def run(self, sweep: SweepRun, groups: list[list[Point]], say: Callable[[str], None]) -> None:
        measure_groups(sweep, groups, say)


def run_sweep(config: SweepConfig, out_dir: str | Path, *, stages: Stages | None = None, force: bool = False,
              progress: bool | None = None, log: Callable[[str], None] | None = None,
              remeasure_noisy: bool = False, executor: Executor | None = None) -> SweepResult:
    """Run (or resume) ``config`` into ``out_dir``'s store. Raises ScaleprofError for problems that
    stop the whole sweep (missing backend, store unusable or full)."""
    stages = stages or UpstreamStages()
    executor = executor or InOrderExecutor()
    out_dir = Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    points = config.points()

    # Every model must be known and every target's backend here before anything runs: one line.
    stages.open(out_dir)                # first: validating scales and counts, cached there
    stages.validate(config)
    try:
        envs = executor.environments(config, stages, say)
        runnable = [p for p in points if p.target in envs]
        with Store(out_dir) as store:
            store.check_targets([t.to_dict() for t in config.targets])     # before anything is written
            if store.upgraded_from is not None:
                say(f"{store.path}: results store schema {store.upgraded_from} upgraded to {store.version} "
                    "(columns added; the points stored before are unchanged)")
            sweep_id = store.begin_sweep(config.name, {**config.to_dict(), "convention": stages.convention})
            noisy = _contended(store, config, envs) if remeasure_noisy and not force else set()
            todo = _unmeasured(store, config, envs, runnable, force, noisy)
            result = SweepResult(total=len(points), skipped=len(runnable) - len(todo), measured=0, failed=0,
                                 reused=0, seconds=0.0, pending=len(points) - len(runnable))
            if result.skipped:
                say(f"{result.skipped} of {len(points)} points already measured in {store.path}; "
                    f"{'re-measuring them (--force)' if force else 'skipping them'}")
            if noisy:
                say(f"re-measuring {len(noisy)} point(s) that could not be measured faithfully (--remeasure-noisy)")
            run = SweepRun(config, stages, store, sweep_id, envs, out_dir, force, noisy,
                           Progress(len(todo), progress), result)
            try:
                executor.run(run, _groups(todo), say)
            finally:
                run.progress.close()
                result.seconds = time.perf_counter() - start
            store.end_sweep(sweep_id)
    finally:
        executor.close()
    return result


def measure_groups(sweep: SweepRun, groups: list[list[Point]], say: Callable[[str], None]) -> None:
    """Every group here: timed in interleaved rounds per target (scaleprof.sweep.rounds) where the
    pipeline gives single-inference runners, else one point after the other."""
    if not sweep.stages.interleaves:
        for group in groups:
            PointGroup(sweep, group).run()
        return

    measure_in_rounds(sweep, [PointGroup(sweep, group) for group in groups], say)


def _unmeasured(store: Store, config: SweepConfig, envs: dict, points: list[Point], force: bool,
                noisy: set[tuple[str, str]]) -> list[Point]:
    """Record each served target's environment; the points to measure (all of them with ``force``; those
    in ``noisy`` again)."""
    served = [t for t in config.targets if t.name in envs]
    for target in served:
        key, env = envs[target.name]
        store.put_environment(key, target.to_dict(), env)
    done = {t.name: (set() if force else store.measured_keys(t.name, envs[t.name][0])) for t in served}
    return [p for p in points if p.key not in done[p.target] or (p.target, p.key) in noisy]


def _contended(store: Store, config: SweepConfig, envs: dict) -> set[tuple[str, str]]:
    """(target, point key) of the stored points of this grid whose timing was flagged as contended."""
    wanted = {(p.target, p.key) for p in config.points()}
    found = {(name, key) for name, (env_key, _) in envs.items() for key in store.contended_keys(name, env_key)}
    return found & wanted


def _groups(points: list[Point]) -> list[list[Point]]:
    """Points that share a spec, precision (and flavour) and target (one export and one engine), in grid order."""
    groups: OrderedDict[tuple, list[Point]] = OrderedDict()
    for p in points:
        groups.setdefault((p.model, p.strategy, p.alpha, p.scale, p.precision, p.flavour, p.target), []).append(p)
    return list(groups.values())


class PointGroup:
    """One group's points through the stages: scale and count once, reuse what this run measured
    already, export and build once, then time (and profile the layers of) each point and store it."""

    def __init__(self, sweep: SweepRun, points: list[Point]):
        self.sweep = sweep
        self.points = points
        self.first = points[0]
        self.target = sweep.config.target(self.first.target)
        self.env_key = sweep.envs[self.target.name][0]
        self.pending = list(points)              # not yet stored: these fail together if a stage fails
        self.seconds: dict[str, float] = {}      # this group's stage seconds so far (stored with each point)
        self.current = STAGES[0]                 # the stage an error is reported in
        self.spec: Any = None
        self.counts: dict[int, Any] = {}         # resolution -> per-image totals
        self.engine = None
        self.engine_key = ""

    def run(self) -> None:
        """Every point of the group, one after the other (pipelines without Stages.runner)."""
        try:
            self.scale_and_count()
            fresh = self.store_measured_earlier()
            if fresh:
                self.export_and_build(fresh)
                for point in fresh:
                    self.measure(point)
        except (StoreError, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - isolate the failure to this group's points
            self.fail_pending(err)
        finally:
            self.release()

    @contextmanager
    def stage(self, name: str, point: Point | None = None, showing: str = "", per_point: bool = True):
        """Time the block as stage ``name`` (into this group's seconds too when ``per_point``), and
        report an error raised in it as that stage's; ``showing`` is what the progress bar says."""
        self.current = name
        if showing:
            self.sweep.progress.show(point or self.first, showing)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            totals = self.sweep.result.stage_seconds
            totals[name] = totals.get(name, 0.0) + elapsed
            if per_point:
                self.seconds[name] = self.seconds.get(name, 0.0) + elapsed

    # ------------------------------------------------------------------------ the steps
    def scale_and_count(self) -> None:
        stages = self.sweep.stages
        with self.stage("scale", showing="scaling"):
            self.spec = stages.spec(self.first)
        with self.stage("count"):
            for resolution in sorted({self.resolution(p) for p in self.points}):
                self.counts[resolution] = stages.count(self.spec, resolution)

    def store_measured_earlier(self) -> list[Point]:
        """Store the points whose network and shape this run measured already (s = 1 is the same
        network under every strategy); the others, still to measure."""
        fresh = []
        for point in self.points:
            earlier = self.sweep.measured.get(self.measured_key(point))
            if earlier is None:
                fresh.append(point)
            else:
                self.store_ok(point, earlier, reused=True)
        return fresh

    def export_and_build(self, fresh: list[Point]) -> None:
        sweep = self.sweep
        precision = self.first.precision
        with self.stage("export", showing="exporting"):
            onnx_path = sweep.stages.export(self.spec, precision, self.first.flavour, sweep.out_dir / "onnx")
        with self.stage("build", showing="building engine"):
            shapes = sorted({(p.batch, self.resolution(p)) for p in fresh})
            self.engine, self.engine_key, _ = sweep.stages.build(onnx_path, self.spec, self.target, precision,
                                                               shapes, sweep.out_dir / "engines")

    def measure(self, point: Point) -> None:
        sweep = self.sweep
        if not self.replacing(point) and sweep.store.is_measured(point.key, point.target, self.env_key):
            self.finished(point, None, stored=False)      # a concurrent sweep got there first
            return
        with self.stage("time", point, showing="timing"):
            latency = sweep.stages.time(self.engine, point.batch, self.resolution(point), sweep.config.timing)
        self.keep(point, latency)

    def keep(self, point: Point, latency: LatencyStats) -> None:
        """Profile the layers of a timed point (where the sweep does) and store it."""
        layers = self.profile_layers(point, self.resolution(point), latency) if self.sweep.config.layers else None
        measured = Measured(latency, layers, self.engine_key)
        self.sweep.measured[self.measured_key(point)] = measured
        self.store_ok(point, measured)

    def profile_layers(self, point: Point, resolution: int, latency: LatencyStats) -> LayerReport:
        stages = self.sweep.stages
        with self.stage("count", point, showing="profiling layers"):
            counts = stages.layer_counts(self.engine, resolution)
        with self.stage("roofline", point):
            peaks = stages.device_peaks(self.engine)
        with self.stage("layers", point):
            return stages.layers(self.engine, self.spec, point.batch, resolution, self.sweep.config.timing,
                                 latency, LayerInputs(counts, peaks))

    # ------------------------------------------------------------------------ storing
    def store_ok(self, point: Point, measured: Measured, reused: bool = False) -> None:
        resolution = self.resolution(point)
        counts = self.counts[resolution]
        stored = self.record(point, "ok", resolution=resolution, spec=self.spec.to_dict(), flops=counts.flops,
                             params=counts.params, acts=counts.acts, layer_count=getattr(counts, "layer_count", None),
                             engine_key=measured.engine_key, latency=measured.latency, layers=measured.layers)
        self.finished(point, measured.latency, stored, reused)

    def record(self, point: Point, status: str, **fields) -> bool:
        """Store one point in its own transaction; False when another sweep stored it first."""
        sweep = self.sweep
        with self.stage("store", per_point=False):
            rec = PointResult(point_key=point.key, target=point.target, env_key=self.env_key, status=status,
                              model=point.model, strategy=point.strategy, alpha=point.alpha, scale=point.scale,
                              resolution=fields.pop("resolution", point.resolution), batch=point.batch,
                              precision=point.precision, flavour=point.flavour or None,
                              backend=self.target.backend, device=self.target.device,
                              resolution_requested="auto" if point.resolution is None else str(point.resolution),
                              stage_seconds=dict(self.seconds), **fields)
            return sweep.store.put_point(rec, sweep.sweep_id, force=self.replacing(point))

    def finished(self, point: Point, latency: LatencyStats | None, stored: bool, reused: bool = False) -> None:
        result = self.sweep.result
        self.pending.remove(point)
        if stored:
            result.measured += 1
            result.reused += reused
        else:                   # a concurrent sweep stored it first: its measurement stands
            result.skipped += 1
        self.sweep.progress.advance(point, latency if stored else None)

    def fail_pending(self, err: Exception, points: list[Point] | None = None) -> None:
        """Record every point not yet stored (or ``points``) as failed in the current stage, with the error."""
        message = f"{self.current}: {_describe(err)}"
        if not isinstance(err, ScaleprofError) and err.__traceback__ is not None:
            frame = traceback.extract_tb(err.__traceback__)[-1]
            message += f" [{Path(frame.filename).name}:{frame.lineno}]"
        result = self.sweep.result
        for point in list(self.pending if points is None else points):
            self.pending.remove(point)
            self.record(point, "failed", error=message)
            result.failed += 1
            result.failures.append((point.label, message))
            self.sweep.progress.advance(point, None, failed=message)

    def release(self) -> None:
        if self.engine is not None:
            try:
                self.sweep.stages.release(self.engine)
            except Exception:  # noqa: BLE001 - releasing is best effort; the points are stored
                pass
            self.engine = None

    def replacing(self, point: Point) -> bool:
        """Whether a stored measurement of ``point`` is to be replaced (--force, or a contended one)."""
        return self.sweep.force or (point.target, point.key) in self.sweep.replace

    def resolution(self, point: Point) -> int:
        return point.resolution or self.spec.resolution

    def measured_key(self, point: Point) -> tuple:
        return self.spec.key, point.batch, self.resolution(point), point.precision, point.flavour, point.target


def _describe(err: BaseException) -> str:
    """'TypeName: first line of the message' (the type name alone for an empty message)."""
    detail = first_line(str(err), 500)
    return f"{type(err).__name__}: {detail}" if detail else type(err).__name__


# ------------------------------------------------------------------------------------ dry run

def dry_run(config: SweepConfig, out_dir: str | Path | None = None, stages: Stages | None = None) -> list[dict]:
    """The grid with predicted counts, nothing exported, built or timed. Each row says whether the
    point is already in the store of ``out_dir`` (for its target's current environment)."""
    stages = stages or UpstreamStages()
    if out_dir is not None and Path(out_dir).is_dir():
        stages.open(Path(out_dir))
    stages.validate(config)
    measured = _measured_per_target(config, out_dir, stages)
    rows = []
    specs: dict[tuple, Any] = {}
    for p in config.points():
        ident = (p.model, p.strategy, p.alpha, p.scale)
        row = {"point": p.label, "key": p.key, "target": p.target}
        try:
            if ident not in specs:
                specs[ident] = stages.spec(p)
            spec = specs[ident]
            res = p.resolution or spec.resolution
            c = stages.count(spec, res)
            row.update(resolution=res, flops=c.flops, params=c.params, acts=c.acts,
                       flops_ratio=getattr(spec, "flops_ratio", None))
        except ScaleprofError as err:
            row.update(error=str(err))
        status = measured.get(p.target, set())
        row["status"] = ("backend missing" if status is None else
                         "measured" if p.key in status else "to do")
        rows.append(row)
    return rows


def _measured_per_target(config: SweepConfig, out_dir, stages: Stages) -> dict[str, set[str] | None]:
    """Target name -> the point keys ``out_dir``'s store holds for its environment (None: its
    backend is missing here, said on stderr)."""
    measured: dict[str, set[str] | None] = {}
    env_keys: dict[str, str] = {}
    for t in config.targets:
        try:
            env_keys[t.name] = stages.environment(t)[0]
        except ScaleprofError as err:
            measured[t.name] = None
            print(f"note: {err}", file=sys.stderr)
    if out_dir is not None and (Path(out_dir) / STORE_NAME).exists():
        with Store(out_dir, create=False) as store:
            store.check_targets([t.to_dict() for t in config.targets])
            for name, key in env_keys.items():
                measured[name] = store.measured_keys(name, key)
    return measured
