"""The pipeline as the sweep runner sees it: ``Stages``, one method per stage of one point.

``UpstreamStages`` calls scaleprof's models, complexity, export, engines and profile, caching what
the scaling search, counting and roofline calibration find in the output directory. Tests pass
their own Stages (no runtime needed) to exercise the runner: only the abstract methods are required.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from abc import ABC, abstractmethod
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, NamedTuple

from scaleprof import __version__
from scaleprof.complexity import CONVENTION, count_spec
from scaleprof.core.files import atomic_target, read_limited
from scaleprof.core.limits import check_fits, inference_bytes
from scaleprof.engines.backends import backend_for
from scaleprof.engines.base import BuildSpec, ShapePoint
from scaleprof.engines.cache import build_engine
from scaleprof.engines.shapes import check_accepts
from scaleprof.errors import BadInput, EnvironmentProblem, ScaleprofError
from scaleprof.export import cached_export
from scaleprof.export.rebuild import rebuild_model
from scaleprof.models import ModelSpec, base_spec, family_of
from scaleprof.models.scaling import scale_spec
from scaleprof.profile import engine_node_counts, engine_peaks, profile_layers
from scaleprof.profile.environment import capture_environment
from scaleprof.profile.timing import time_engine
from scaleprof.profile.types import LatencyStats, LayerReport
from scaleprof.sweep.config import Point, SweepConfig, Target

PROGRESS_EVERY_S = 10.0     # a large grid whose checks take longer says how far they are, this often
PROGRESS_FROM_POINTS = 100  # (a small one's first point may take that long only to import torch)
CACHE_ENTRY_BYTES = 16 << 20    # a cached spec or count is kilobytes (per-node counts of a huge net: megabytes)


class CountTotals(NamedTuple):
    """Per-image totals of one spec at one resolution (what Stages.count returns upstream)."""

    flops: int
    params: int
    acts: int
    layer_count: int | None = None    # layers executed per inference


class LayerInputs(NamedTuple):
    """What layer profiling needs besides the run, prepared outside the timed measurement."""

    counts: Any                   # per-ONNX-node counts (Stages.layer_counts)
    peaks: Any                    # device roofline peaks, or None (Stages.device_peaks)


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
        """The point's model spec (anything with .key, .resolution, .to_dict(); a ModelSpec upstream)."""

    @abstractmethod
    def count(self, spec, resolution: int):
        """Per-image totals at ``resolution``: .flops .params .acts (and .layer_count where counted)"""

    @abstractmethod
    def export(self, spec, precision: str, flavour: str, cache_dir: Path) -> Path:
        """The ONNX file of ``spec`` at ``precision``; ``flavour`` (int8 only, else "") is the
        activation type its target's backend takes (scaleprof.engines.int8_flavour)."""

    @abstractmethod
    def build(self, onnx_path: Path, spec, target: Target, precision: str, shapes, cache_dir: Path):
        """-> (engine, engine_key, cached)"""

    @abstractmethod
    def time(self, engine, batch: int, resolution: int, timing) -> LatencyStats:
        """End-to-end latency of ``engine`` at one shape."""

    def runner(self, engine, batch: int, resolution: int):
        """A single-inference callable (returns ms; may carry ``timing_method``), the engine loaded
        first: what a sweep times in interleaved rounds (scaleprof.sweep.rounds). A pipeline without
        it has its points timed whole, one after the other (``time``)."""
        raise NotImplementedError

    @property
    def interleaves(self) -> bool:
        """Whether this pipeline gives runners, so that its sweeps time in interleaved rounds."""
        return type(self).runner is not Stages.runner

    def layer_counts(self, engine, resolution: int):
        """Per-ONNX-node counts for layer profiling (LayerInputs.counts)."""
        return None

    def device_peaks(self, engine):
        """The device's roofline peaks for layer profiling (LayerInputs.peaks), or None."""
        return None

    @abstractmethod
    def layers(self, engine, spec, batch: int, resolution: int, timing, latency: LatencyStats,
               inputs: LayerInputs | None = None) -> LayerReport:
        """Per-layer profile of ``engine`` at one shape, mapped to the ONNX nodes and their counts."""

    def release(self, engine) -> None:
        pass


class UpstreamStages(Stages):
    """The real pipeline: scaleprof.models / complexity / export / engines / profile."""

    def __init__(self, roofline: bool = True):
        self._envs: dict[str, tuple[str, dict]] = {}
        self._onnx_counts: dict[tuple, Any] = {}
        self._peaks: dict[tuple, Any] = {}
        self._memo: dict[str, dict] = {}        # what _cached found in this run
        self.roofline = roofline
        self.cache_dir: Path | None = None

    def open(self, out_dir: Path) -> None:
        self.cache_dir = Path(out_dir) / "cache"

    def _cached(self, kind: str, ident: list, compute: Callable[[], dict],
                valid: Callable[[dict], bool] = lambda data: True) -> dict:
        """A JSON-able result of the scaling search or of counting, cached in the output directory
        (keyed by what determines it, including the scaleprof, timm and torch versions) and in memory.
        A cached result that ``valid`` does not accept (damaged, edited) is computed again."""
        versions = [__version__] + [_dist_version(metadata, d) for d in ("timm", "torch")]
        key = hashlib.sha256(json.dumps([kind, ident, versions], sort_keys=True).encode()).hexdigest()[:24]
        if key not in self._memo:
            self._memo[key] = self._read_or_compute(self.cache_dir / kind / f"{key}.json" if self.cache_dir else None,
                                                    compute, valid)
        return self._memo[key]

    @staticmethod
    def _read_or_compute(path: Path | None, compute: Callable[[], dict], valid: Callable[[dict], bool]) -> dict:
        try:
            data = json.loads(read_limited(path, CACHE_ENTRY_BYTES, "cache entry")) if path else None
            if isinstance(data, dict) and valid(data):
                return data
        except (OSError, ValueError, RecursionError, ScaleprofError):
            pass                        # missing, damaged or huge: computed again
        data = compute()
        try:
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_target(path) as tmp:
                    tmp.write_text(json.dumps(data, sort_keys=True))
        except (OSError, ScaleprofError):
            pass                        # a cache that cannot be written is only slower
        return data

    @property
    def convention(self) -> str:
        return CONVENTION

    def validate(self, config: SweepConfig) -> None:
        for model in config.models:
            family_of(model)            # BadInput naming the nearest known model
        for target in config.targets:
            self._check_target(target, config.precisions)
        self._check_points(config)

    def _check_target(self, target: Target, precisions) -> None:
        """BadInput for options the target's backend does not take, or an execution provider this
        machine lacks, said once before any work (not once per point, as each failed). A backend
        missing here altogether is the runner's to report."""
        try:
            backend = backend_for(target.backend, target.device)
        except ScaleprofError:
            return
        for precision in precisions:
            spec = BuildSpec(backend=target.backend, device=target.device, precision=precision,
                             threads=target.threads, options=target.options)
            try:
                backend.build_key_parts(spec)
            except ScaleprofError as err:
                raise BadInput(f"target {target.name!r}: {err}") from None
            return                      # the options do not depend on the precision

    def _check_points(self, config: SweepConfig) -> None:
        """Refuse, before anything runs, a point that cannot be scaled or counted (a scale out of reach,
        a resolution the model cannot take, a fractional phi), or whose tensors this machine cannot
        hold (estimated from its counts; the specs and counts found are the ones the run uses). A
        grid that takes a while says how far it is on stderr."""

        points = config.points()
        start = last = time.monotonic()
        for done, point in enumerate(points):
            try:
                spec = self.spec(point)
                resolution = point.resolution or spec.resolution
                counts = self.count(spec, resolution)
            except ScaleprofError as err:
                raise BadInput(f"point {point.label}: {err}") from None
            check_fits(inference_bytes(counts.params, counts.acts, point.batch, resolution, point.precision),
                       f"point {point.label}")
            if len(points) >= PROGRESS_FROM_POINTS and time.monotonic() - last > PROGRESS_EVERY_S:
                last = time.monotonic()
                print(f"checking the grid: {done + 1} of {len(points)} points scaled and counted "
                      f"({last - start:.0f} s)", file=sys.stderr, flush=True)

    def environment(self, target: Target) -> tuple[str, dict]:
        if target.name not in self._envs:
            try:
                backend = backend_for(target.backend, target.device)
            except ScaleprofError as err:
                raise EnvironmentProblem(f"target {target.name!r}: {err}") from None
            env = capture_environment(backend.name, backend.version(), target.device, target.threads,
                                      backend.device_name(target.device))
            self._envs[target.name] = (env.key, env.to_dict())
        return self._envs[target.name]

    def spec(self, point: Point):
        if point.strategy == "none" or point.scale == 1.0:
            return base_spec(point.model)          # s = 1 of every strategy is the base network

        def search() -> dict:
            return scale_spec(point.model, point.strategy, point.scale, point.alpha).to_dict()

        def valid(data: dict) -> bool:          # a damaged or edited entry is searched again
            try:
                return ModelSpec.from_dict(data).model == point.model
            except (TypeError, KeyError, ValueError, AttributeError, ScaleprofError):
                return False

        return ModelSpec.from_dict(self._cached("specs", [point.model, point.strategy, point.alpha, point.scale],
                                                search, valid))

    def count(self, spec, resolution: int):
        def count() -> dict:
            counts = count_spec(spec, resolution=resolution, batch=1)
            return {**counts.totals(), "layer_count": counts.layer_count}

        return CountTotals(**self._cached("counts", [spec.key, resolution, "layer_count"], count, _valid_counts))

    def export(self, spec, precision: str, flavour: str, cache_dir: Path) -> Path:
        """Exports are cached by spec, precision and flavour (scaleprof.export.cached_export)."""
        return cached_export(spec, precision, cache_dir, flavour)

    def build(self, onnx_path: Path, spec, target: Target, precision: str, shapes, cache_dir: Path):
        result = build_engine(onnx_path, build_spec(target, precision, shapes), cache_dir, model_source=rebuild_model)
        return result.engine, result.key, result.cached

    def time(self, engine, batch: int, resolution: int, timing) -> LatencyStats:
        return time_engine(engine, ShapePoint(batch, resolution), timing, progress=False)

    def runner(self, engine, batch: int, resolution: int):
        shape = ShapePoint(batch, resolution)
        check_accepts(engine, shape)
        engine.load()
        return engine.runner(shape)

    def layer_counts(self, engine, resolution: int):
        """Per-ONNX-node counts of the engine's ONNX file at ``resolution`` (cached)."""
        m = engine.manifest
        key = (m.onnx_path, resolution)
        if key not in self._onnx_counts:
            def count() -> dict:
                return engine_node_counts(engine, 1, resolution)

            # the export cache names an ONNX file by its spec key, precision and flavour: its content
            self._onnx_counts[key] = self._cached("node-counts", [Path(m.onnx_path).name, resolution], count)
        return self._onnx_counts[key]

    def device_peaks(self, engine):
        """The engine's device roofline peaks, calibrated once per device, precision and threads
        (and cached in the output directory); None when the roofline is off."""
        if not self.roofline:
            return None

        m = engine.manifest
        key = (m.device, m.device_name, m.precision, m.threads)
        if key not in self._peaks:
            self._peaks[key] = engine_peaks(engine, self.cache_dir)
        return self._peaks[key]

    def layers(self, engine, spec, batch: int, resolution: int, timing, latency: LatencyStats,
               inputs: LayerInputs | None = None) -> LayerReport:
        if inputs is None:
            inputs = LayerInputs(self.layer_counts(engine, resolution), self.device_peaks(engine))
        counts, peaks = inputs
        return profile_layers(engine, ShapePoint(batch, resolution), counts,
                              end_to_end_ms=latency.median, iterations=timing.layer_iters, peaks=peaks)

    def release(self, engine) -> None:
        engine.release()


def _valid_counts(data: dict) -> bool:
    """Counts as count() caches them: positive flops, non-negative params, acts and layers, nothing else."""
    def whole(value, least: int) -> bool:
        return type(value) is int and value >= least

    return set(data) == {"flops", "params", "acts", "layer_count"} and whole(data["flops"], 1) and \
        whole(data["params"], 0) and whole(data["acts"], 0) and (data["layer_count"] is None or
                                                                   whole(data["layer_count"], 0))


def build_spec(target: Target, precision: str, shapes):
    """The engine build of a target at ``precision`` for the (batch, resolution) ``shapes``."""
    return BuildSpec(backend=target.backend, device=target.device, precision=precision, threads=target.threads,
                     shapes=tuple(sorted(ShapePoint(b, r) for b, r in shapes)), options=target.options)


def _dist_version(metadata, name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""
