"""The sweep runner: every grid point through count -> export -> build -> profile, into the store.

Points that share a model spec, precision and target share one export and one engine (its shape
set holds every batch size and resolution of the group). The export and engine caches live in the
output directory, so a re-run builds nothing. Each point is stored in its own transaction the moment
it is measured; a point already measured for the same target and environment is skipped unless
``force``. A failing point (in any stage) is recorded with its error and the sweep goes on; a
failing store (disk full) stops the sweep with one line, leaving what was stored intact.

The stages are an object (``Stages``): ``UpstreamStages`` calls scaleprof's models, complexity,
export, engines and profile; tests pass their own to exercise the runner without a runtime.
"""

from __future__ import annotations

import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scaleprof.errors import EnvironmentProblem, ScaleprofError
from scaleprof.sweep.config import Point, SweepConfig, Target
from scaleprof.sweep.store import STORE_NAME, PointRecord, Store, StoreError

MEASURE_STAGES = ("time", "layers")          # what counts as measurement in the overhead figures


# ------------------------------------------------------------------------------------ stages

@dataclass
class Prepared:
    """A point's model, ready to count and export: its spec (dict) and its shape."""

    spec: Any                     # ModelSpec (or anything with .key, .resolution, .to_dict())
    resolution: int
    counts: Any = None            # per-image totals: .flops .params .acts


class Stages(ABC):
    """What the runner needs from the pipeline. Each method may raise; see UpstreamStages."""

    convention = ""                   # how counts are defined (recorded with each sweep)

    def open(self, out_dir: Path) -> None:
        """Called with the output directory before a run (where caches may live)."""

    def validate(self, config: SweepConfig) -> None:
        """Raise BadInput for names the pipeline does not know (before anything runs)."""

    @abstractmethod
    def environment(self, target: Target) -> tuple[str, dict]:
        """(environment key, environment dict) for a target; EnvironmentProblem if its backend is missing."""

    @abstractmethod
    def spec(self, point: Point):
        """The point's model spec (see Prepared.spec)."""

    @abstractmethod
    def count(self, spec, resolution: int):
        """Per-image totals at ``resolution``: .flops .params .acts"""

    @abstractmethod
    def export(self, spec, precision: str, cache_dir: Path) -> Path:
        """The ONNX file of ``spec`` at ``precision``."""

    @abstractmethod
    def build(self, onnx_path: Path, spec, target: Target, precision: str, shapes, cache_dir: Path):
        """-> (engine, engine_key, cached)"""

    @abstractmethod
    def time(self, engine, batch: int, resolution: int, timing) -> dict:
        """-> LatencyStats.to_dict()"""

    def layer_inputs(self, engine, resolution: int):
        """What layer profiling needs besides the run (per-node counts, device peaks): prepared
        outside the timed measurement, passed to layers()."""
        return None

    @abstractmethod
    def layers(self, engine, spec, batch: int, resolution: int, timing, latency: dict,
               inputs=None) -> tuple[dict, list[dict]]:
        """-> (summary dict, layer dicts)"""

    def release(self, engine) -> None:
        pass


class UpstreamStages(Stages):
    """The real pipeline: scaleprof.models / complexity / export / engines / profile."""

    def __init__(self, roofline: bool = True):
        self._envs: dict[str, tuple[str, dict]] = {}
        self._onnx_counts: dict[tuple, Any] = {}
        self._peaks: dict[tuple, Any] = {}
        self.roofline = roofline
        self.cache_dir: Path | None = None

    def open(self, out_dir: Path) -> None:
        self.cache_dir = Path(out_dir) / "cache"

    def _cached(self, kind: str, ident: list, compute: Callable[[], dict]) -> dict:
        """A JSON-able result of the scaling search or of counting, cached in the output directory
        (keyed by what determines it, including the scaleprof, timm and torch versions)."""
        if self.cache_dir is None:
            return compute()
        import hashlib
        import json
        from importlib import metadata

        from scaleprof import __version__

        versions = [__version__] + [_dist_version(metadata, d) for d in ("timm", "torch")]
        key = hashlib.sha256(json.dumps([kind, ident, versions], sort_keys=True).encode()).hexdigest()[:24]
        path = self.cache_dir / kind / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
        data = compute()
        try:
            from scaleprof.core.files import atomic_target

            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_target(path) as tmp:
                tmp.write_text(json.dumps(data, sort_keys=True))
        except OSError:
            pass                        # a cache that cannot be written is only slower
        return data

    @property
    def convention(self) -> str:
        from scaleprof.complexity.types import CONVENTION

        return CONVENTION

    def validate(self, config: SweepConfig) -> None:
        from scaleprof.models import family_of

        for model in config.models:
            family_of(model)            # BadInput naming the nearest known model

    def environment(self, target: Target) -> tuple[str, dict]:
        if target.name not in self._envs:
            from scaleprof.engines.registry import backend_for
            from scaleprof.profile.environment import capture_environment

            try:
                backend = backend_for(target.backend, target.device)
            except ScaleprofError as err:
                raise EnvironmentProblem(f"target {target.name!r}: {err}") from None
            env = capture_environment(backend.name, backend.version(), target.device, target.threads,
                                      backend.device_name(target.device))
            self._envs[target.name] = (env.key, env.to_dict())
        return self._envs[target.name]

    def spec(self, point: Point):
        from scaleprof.models import ModelSpec, base_spec

        if point.strategy == "none" or point.scale == 1.0:
            return base_spec(point.model)          # s = 1 of every strategy is the base network

        def search() -> dict:
            from scaleprof.models.scaling import scale_spec

            return scale_spec(point.model, point.strategy, point.scale, point.alpha).to_dict()

        return ModelSpec.from_dict(self._cached("specs", [point.model, point.strategy, point.alpha, point.scale],
                                                search))

    def count(self, spec, resolution: int):
        def count() -> dict:
            from scaleprof.complexity import count_spec

            return count_spec(spec, resolution=resolution, batch=1).totals()

        return _Totals(**self._cached("counts", [spec.key, resolution], count))

    def export(self, spec, precision: str, cache_dir: Path) -> Path:
        """Exports are cached by spec and precision: export_onnx writes under a temporary name and
        renames only a fully checked file, so a file under the cache name is complete.

        The sweep checks parity at one shape (batch 1, the spec's resolution) rather than export's
        default four: the export stage's own tests cover dynamic shapes, and on a 2-core CPU the
        other three runs would double a sweep's export time."""
        from scaleprof.export import ExportOptions, export_onnx

        path = Path(cache_dir) / f"{spec.model}-{spec.key}-{precision}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(spec, path, ExportOptions(precision=precision, parity_batches=(1,),
                                                  parity_resolutions=(spec.resolution,)))
        return path

    def build(self, onnx_path: Path, spec, target: Target, precision: str, shapes, cache_dir: Path):
        from scaleprof.engines.base import BuildSpec, ShapePoint
        from scaleprof.engines.cache import build_engine
        from scaleprof.export.rebuild import rebuild_model

        build = BuildSpec(backend=target.backend, device=target.device, precision=precision,
                          threads=target.threads, shapes=tuple(sorted(ShapePoint(b, r) for b, r in shapes)),
                          options=target.options)
        result = build_engine(onnx_path, build, cache_dir, model_source=rebuild_model)
        return result.engine, result.key, result.cached

    def time(self, engine, batch: int, resolution: int, timing) -> dict:
        from scaleprof.engines.base import ShapePoint
        from scaleprof.profile.timing import time_engine

        return time_engine(engine, ShapePoint(batch, resolution), timing, progress=False).to_dict()

    def layer_inputs(self, engine, resolution: int):
        """Per-ONNX-node counts at ``resolution`` and the device's roofline peaks (both cached)."""
        from scaleprof.profile import device_peaks

        m = engine.manifest
        key = (m.onnx_path, resolution)
        if key not in self._onnx_counts:
            def count() -> dict:
                from scaleprof.complexity import count_onnx
                from scaleprof.profile import node_counts

                return node_counts(count_onnx(m.onnx_path, batch=1, resolution=resolution))

            # the export cache names an ONNX file by its spec key and precision: its content
            self._onnx_counts[key] = self._cached("node-counts", [Path(m.onnx_path).name, resolution], count)
        peaks = None
        if self.roofline:
            pkey = (m.device, m.device_name, m.precision, m.threads)
            if pkey not in self._peaks:
                self._peaks[pkey] = device_peaks(m.device, m.device_name, m.precision, m.threads,
                                                 cache_dir=self.cache_dir)
            peaks = self._peaks[pkey]
        return self._onnx_counts[key], peaks

    def layers(self, engine, spec, batch: int, resolution: int, timing, latency: dict, inputs=None):
        from scaleprof.engines.base import ShapePoint
        from scaleprof.profile import profile_layers

        counts, peaks = inputs if inputs is not None else self.layer_inputs(engine, resolution)
        report = profile_layers(engine, ShapePoint(batch, resolution), counts,
                                end_to_end_ms=latency["median"], iterations=timing.layer_iters, peaks=peaks)
        data = report.to_dict()
        layers = data.pop("layers")
        return data, layers

    def release(self, engine) -> None:
        engine.release()


@dataclass(frozen=True)
class _Totals:
    flops: int
    params: int
    acts: int


def _dist_version(metadata, name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


# ------------------------------------------------------------------------------------ the run

@dataclass
class SweepResult:
    total: int                    # points in the grid
    skipped: int                  # already measured (same target + environment)
    measured: int
    failed: int
    reused: int                   # measured once, stored for several points (s = 1 across strategies)
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def measurement_seconds(self) -> float:
        return sum(self.stage_seconds.get(s, 0.0) for s in MEASURE_STAGES)

    @property
    def overhead_share(self) -> float:
        """Share of the sweep's wall time spent outside measurement (counting, export, build, store...)."""
        return 1.0 - self.measurement_seconds / self.seconds if self.seconds > 0 else 0.0


def run_sweep(config: SweepConfig, out_dir: str | Path, *, stages: Stages | None = None, force: bool = False,
              progress: bool | None = None, log: Callable[[str], None] | None = None) -> SweepResult:
    """Run (or resume) ``config`` into ``out_dir``'s store. Raises ScaleprofError for problems that
    stop the whole sweep (missing backend, store unusable or full)."""
    stages = stages or UpstreamStages()
    out_dir = Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    points = config.points()

    # Every model must be known and every target's backend here before anything runs: one line.
    stages.validate(config)
    stages.open(out_dir)
    envs = {t.name: stages.environment(t) for t in config.targets}
    with Store(out_dir) as store:
        sweep_id = store.begin_sweep(config.name, {**config.to_dict(), "convention": stages.convention})
        for target in config.targets:
            key, env = envs[target.name]
            store.put_environment(key, target.to_dict(), env)
        done = {t.name: (set() if force else store.measured_keys(t.name, envs[t.name][0])) for t in config.targets}
        todo = [p for p in points if p.key not in done[p.target]]
        result = SweepResult(total=len(points), skipped=len(points) - len(todo), measured=0, failed=0, reused=0,
                             seconds=0.0)
        if result.skipped:
            say(f"{result.skipped} of {len(points)} points already measured in {store.path}; "
                f"{'re-measuring them (--force)' if force else 'skipping them'}")
        # Points that share a spec, precision and target share one export and one engine.
        groups: OrderedDict[tuple, list[Point]] = OrderedDict()
        for p in todo:
            groups.setdefault((p.model, p.strategy, p.alpha, p.scale, p.precision, p.target), []).append(p)
        bar = _Progress(len(todo), progress)
        shared: dict[tuple, tuple] = {}      # (spec key, batch, resolution, precision, target) -> measurement
        try:
            for group in groups.values():
                _run_group(group, config, stages, store, sweep_id, envs, out_dir, force, bar, result, shared)
        finally:
            bar.close()
            result.seconds = time.perf_counter() - start
        store.end_sweep(sweep_id)
    return result


def _run_group(group: list[Point], config: SweepConfig, stages: Stages, store: Store, sweep_id: int, envs: dict,
               out_dir: Path, force: bool, bar: "_Progress", result: SweepResult, shared: dict) -> None:
    first = group[0]
    target = config.target(first.target)
    env_key = envs[target.name][0]
    seconds: dict[str, float] = {}
    engine = None
    pending = list(group)

    def timed(stage, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            dt = time.perf_counter() - t0
            seconds[stage] = seconds.get(stage, 0.0) + dt
            result.stage_seconds[stage] = result.stage_seconds.get(stage, 0.0) + dt

    def record(point: Point, status: str, **fields) -> bool:
        t0 = time.perf_counter()
        rec = PointRecord(point_key=point.key, target=point.target, env_key=env_key, status=status,
                          model=point.model, strategy=point.strategy, alpha=point.alpha, scale=point.scale,
                          resolution=fields.pop("resolution", point.resolution), batch=point.batch,
                          precision=point.precision, backend=target.backend, device=target.device,
                          resolution_requested="auto" if point.resolution is None else str(point.resolution),
                          stage_seconds=dict(seconds), **fields)
        stored = store.put_point(rec, sweep_id, force=force)
        dt = time.perf_counter() - t0
        result.stage_seconds["store"] = result.stage_seconds.get("store", 0.0) + dt
        return stored

    def measured(point: Point, latency: dict | None, stored: bool, reused: bool = False) -> None:
        pending.remove(point)
        if stored:
            result.measured += 1
            result.reused += reused
        else:                   # a concurrent sweep stored it first: its measurement stands
            result.skipped += 1
        bar.advance(point, latency if stored else None)

    def record_ok(point: Point, measurement: tuple, reused: bool = False) -> None:
        latency, summary, layers, engine_key = measurement
        res = resolution(point)
        c = counts[res]
        stored = record(point, "ok", resolution=res, spec=spec.to_dict(), flops=c.flops, params=c.params,
                        acts=c.acts, engine_key=engine_key, latency=latency, layer_summary=summary, layers=layers)
        measured(point, latency, stored, reused)

    def resolution(point: Point) -> int:
        return point.resolution or spec.resolution

    def shared_key(point: Point) -> tuple:
        return spec.key, point.batch, resolution(point), point.precision, point.target

    stage = "scale"
    try:
        bar.show(first, "scaling")
        spec = timed("scale", stages.spec, first)
        stage = "count"
        counts = {r: timed("count", stages.count, spec, r) for r in sorted({resolution(p) for p in group})}

        # Points whose network and shape were measured earlier in this run (s = 1 across strategies).
        fresh = []
        for p in group:
            if shared_key(p) in shared:
                record_ok(p, shared[shared_key(p)], reused=True)
            else:
                fresh.append(p)
        if not fresh:
            return

        stage = "export"
        bar.show(first, "exporting")
        onnx_path = timed("export", stages.export, spec, first.precision, out_dir / "onnx")
        stage = "build"
        bar.show(first, "building engine")
        shapes = sorted({(p.batch, resolution(p)) for p in fresh})
        engine, engine_key, _ = timed("build", stages.build, onnx_path, spec, target, first.precision,
                                      shapes, out_dir / "engines")
        for p in fresh:
            if not force and store.is_measured(p.key, p.target, env_key):   # a concurrent sweep got there first
                measured(p, None, stored=False)
                continue
            res = resolution(p)
            stage = "time"
            bar.show(p, "timing")
            latency = timed("time", stages.time, engine, p.batch, res, config.timing)
            summary, layers = None, []
            if config.layers:
                stage = "layers"
                bar.show(p, "profiling layers")
                inputs = timed("count", stages.layer_inputs, engine, res)
                summary, layers = timed("layers", stages.layers, engine, spec, p.batch, res, config.timing, latency,
                                        inputs)
            stage = "store"
            shared[shared_key(p)] = (latency, summary, layers, engine_key)
            record_ok(p, shared[shared_key(p)])
    except (StoreError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - isolate the failure to this group's points
        message = f"{stage}: {_one_line(err)}"
        if not isinstance(err, ScaleprofError):
            frame = traceback.extract_tb(err.__traceback__)[-1]
            message += f" [{Path(frame.filename).name}:{frame.lineno}]"
        for p in pending:
            record(p, "failed", error=message)
            result.failed += 1
            result.failures.append((p.label, message))
            bar.advance(p, None, failed=message)
    finally:
        if engine is not None:
            try:
                stages.release(engine)
            except Exception:  # noqa: BLE001
                pass


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip().rstrip(":")[:500]


# ------------------------------------------------------------------------------------ progress

class _Progress:
    """A rich progress bar (current point, stage, ETA) on a terminal; one line per point otherwise."""

    def __init__(self, total: int, enabled: bool | None):
        self.total = total
        self.done = 0
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.progress = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task("sweep", total=total)

    def show(self, point: Point, stage: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=f"{stage}: {point.label}")

    def advance(self, point: Point, latency: dict | None, failed: str | None = None) -> None:
        self.done += 1
        if latency:
            what = f"{latency['median']:.2f} ms ({latency.get('throughput', 0):.1f} img/s)"
        elif failed:
            what = f"FAILED {failed}"
        else:
            what = "measured by another sweep"
        line = f"[{self.done}/{self.total}] {point.label}: {what}"
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
            self.progress.advance(self.task)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


# ------------------------------------------------------------------------------------ dry run

def dry_run(config: SweepConfig, out_dir: str | Path | None = None, stages: Stages | None = None) -> list[dict]:
    """The grid with predicted counts, nothing exported, built or timed. Each row says whether the
    point is already in the store of ``out_dir`` (for its target's current environment)."""
    stages = stages or UpstreamStages()
    stages.validate(config)
    if out_dir is not None and Path(out_dir).is_dir():
        stages.open(Path(out_dir))
    measured: dict[str, set[str] | None] = {}
    store_path = Path(out_dir) / STORE_NAME if out_dir else None
    targets_env: dict[str, str | None] = {}
    for t in config.targets:
        try:
            targets_env[t.name] = stages.environment(t)[0]
        except ScaleprofError as err:
            targets_env[t.name] = None
            measured[t.name] = None
            print(f"note: {err}", file=sys.stderr)
    if store_path is not None and store_path.exists():
        with Store(out_dir, create=False) as store:
            for name, key in targets_env.items():
                if key is not None:
                    measured[name] = store.measured_keys(name, key)
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
