"""What the executors share: which groups measure one network (one export), which groups must run
in one place (a bundle), and preparing a network ahead of its measurement.

- A *network* is what one export holds: a model spec at a precision. s = 1 of every strategy is the
  base network (as UpstreamStages.spec decides), so it is exported once for the whole grid.
- A *bundle* is the groups of one target that share a network. They run one after the other in one
  place, so that the base network is timed once and stored for every strategy's s = 1 point (the
  runner's ``SweepRun.measured``), whatever executor runs them.
- ``prepare_network`` runs the stages before measurement (scaling search, counting, export, and
  where asked engine builds with the layer counts) with the stages' own caches, so that the group
  that later runs the same stages finds everything done. It never times anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleprof.sweep.config import Point, SweepConfig, Target
from scaleprof.sweep.stages import Stages

# Where PointGroup.export_and_build keeps exports and engines, under the output directory.
ONNX_DIR = "onnx"
ENGINE_DIR = "engines"


def network_of(point: Point) -> tuple:
    """The identity of the point's export. Two points with the same identity may still be one
    network (another executor then exports it twice): the identity only saves work."""
    base = point.strategy == "none" or point.scale == 1
    scaling = ("base",) if base else (point.strategy, point.alpha, point.scale)
    return (point.model, point.precision, point.flavour) + scaling


@dataclass
class Bundle:
    """Groups of one target that share a network, in grid order."""

    network: tuple
    target: str
    groups: list[list[Point]] = field(default_factory=list)

    @property
    def points(self) -> list[Point]:
        return [p for group in self.groups for p in group]


def bundles(groups: list[list[Point]]) -> list[Bundle]:
    by_key: dict[tuple, Bundle] = {}
    for group in groups:
        first = group[0]
        key = (network_of(first), first.target)
        by_key.setdefault(key, Bundle(key[0], first.target)).groups.append(group)
    return list(by_key.values())


@dataclass(frozen=True)
class NetworkPlan:
    """What preparing one network means: its first point (whose spec it is), the resolutions its
    points ask for (None: the spec's own) and, per target, the engine shapes to build."""

    network: tuple
    point: Point
    resolutions: tuple
    builds: tuple[tuple[Target, tuple], ...] = ()

    def shapes_for(self, spec, shapes: tuple) -> list[tuple[int, int]]:
        return sorted({(batch, resolution or spec.resolution) for batch, resolution in shapes})


def network_plans(config: SweepConfig, groups: list[list[Point]]) -> list[NetworkPlan]:
    """One plan per network, in grid order. The engine of a bundle is built with the shapes of its
    first group: the later groups of a bundle reuse its measurements and build nothing."""
    plans: dict[tuple, dict[str, Any]] = {}
    for bundle in bundles(groups):
        plan = plans.setdefault(bundle.network, {"point": bundle.groups[0][0], "resolutions": set(), "builds": []})
        plan["resolutions"].update(p.resolution for p in bundle.points)
        shapes = tuple(sorted({(p.batch, p.resolution) for p in bundle.groups[0]}, key=str))
        plan["builds"].append((config.target(bundle.target), shapes))
    return [NetworkPlan(network, plan["point"], tuple(sorted(plan["resolutions"], key=str)), tuple(plan["builds"]))
            for network, plan in plans.items()]


def scaling_of(point: Point) -> tuple:
    """What a point's spec is computed from."""
    return point.model, point.strategy, point.alpha, point.scale


@dataclass
class Prepared:
    """A prepared network: the spec of its first point, its per-image counts by resolution and its
    ONNX file."""

    network: tuple
    scaling: tuple                # scaling_of(the point whose spec it is)
    precision: str
    spec: Any
    counts: dict
    onnx_path: Path
    flavour: str = ""             # int8: the file's activation type


def prepare_network(stages: Stages, plan: NetworkPlan, out_dir: Path, *, build: bool = False,
                    layers: bool = False) -> Prepared:
    """Run the preparing stages of ``plan`` with ``stages`` opened on ``out_dir`` (their caches).
    With ``build``, also build each target's engine (and count its layers, with ``layers``)."""
    spec = stages.spec(plan.point)
    precision, flavour = plan.point.precision, plan.point.flavour
    counts = {r: stages.count(spec, r) for r in sorted({r or spec.resolution for r in plan.resolutions})}
    onnx_path = stages.export(spec, precision, flavour, Path(out_dir) / ONNX_DIR)
    for target, shapes in plan.builds if build else ():
        shapes = plan.shapes_for(spec, shapes)
        engine, _, _ = stages.build(onnx_path, spec, target, precision, shapes, Path(out_dir) / ENGINE_DIR)
        try:
            for resolution in sorted({r for _, r in shapes}) if layers else ():
                stages.layer_counts(engine, resolution)
        finally:
            stages.release(engine)
    return Prepared(plan.network, scaling_of(plan.point), precision, spec, counts, Path(onnx_path), flavour)


class PreparedStages(Stages):
    """``inner``, answering the spec, counts and ONNX file of each prepared network from what its
    preparation found (on another host, say); anything else, and anything not prepared, is
    ``inner``'s."""

    def __init__(self, inner: Stages, prepared: list[Prepared]):
        self.inner = inner
        self.specs = {p.scaling: p.spec for p in prepared}
        self.by_spec_key = {p.spec.key: p for p in prepared}
        self.exports = {(p.spec.key, p.precision, p.flavour): p.onnx_path for p in prepared}

    @property
    def convention(self) -> str:
        return self.inner.convention

    def open(self, out_dir: Path) -> None:
        self.inner.open(out_dir)

    def environment(self, target: Target) -> tuple[str, dict]:
        return self.inner.environment(target)

    def spec(self, point: Point):
        spec = self.specs.get(scaling_of(point))      # another strategy's s = 1 asks the stages
        return spec if spec is not None else self.inner.spec(point)

    def count(self, spec, resolution: int):
        prepared = self.by_spec_key.get(spec.key)
        if prepared is not None and resolution in prepared.counts:
            return prepared.counts[resolution]
        return self.inner.count(spec, resolution)

    def export(self, spec, precision: str, flavour: str, cache_dir: Path) -> Path:
        path = self.exports.get((spec.key, precision, flavour))
        return path if path is not None and path.is_file() else self.inner.export(spec, precision, flavour, cache_dir)

    def build(self, onnx_path: Path, spec, target: Target, precision: str, shapes, cache_dir: Path):
        return self.inner.build(onnx_path, spec, target, precision, shapes, cache_dir)

    def time(self, engine, batch: int, resolution: int, timing) -> dict:
        return self.inner.time(engine, batch, resolution, timing)

    def layer_counts(self, engine, resolution: int):
        return self.inner.layer_counts(engine, resolution)

    def device_peaks(self, engine):
        return self.inner.device_peaks(engine)

    def layers(self, engine, spec, batch: int, resolution: int, timing, latency, inputs=None):
        return self.inner.layers(engine, spec, batch, resolution, timing, latency, inputs)

    def release(self, engine) -> None:
        self.inner.release(engine)
