"""The interface every executor implements, and what the runner hands it.

The runner (scaleprof.sweep.runner) checks the grid, opens the store and groups the points to
measure; an ``Executor`` says which targets can be measured now and runs the groups: the runner's
own in order, ``PreparingExecutor`` with worker processes, ``RayExecutor`` on Ray hosts. Each gets one
``SweepRun``: what the groups of the run share, with the ``SweepResult`` it counts into.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from scaleprof.profile.types import LatencyStats, LayerReport
from scaleprof.sweep.config import Point, SweepConfig
from scaleprof.sweep.progress import Progress
from scaleprof.sweep.stages import Stages
from scaleprof.sweep.store import Store

# Every stage a point goes through, in order; roofline calibration is a stage of its own.
STAGES = ("scale", "count", "export", "build", "time", "roofline", "layers", "store")
MEASURE_STAGES = ("time", "layers")          # what counts as measurement in the overhead figures


@dataclass
class SweepResult:
    total: int                    # points in the grid
    skipped: int                  # already measured (same target + environment)
    measured: int
    failed: int
    reused: int                   # measured once, stored for several points (s = 1 across strategies)
    seconds: float
    pending: int = 0              # their target has no host now (Ray): not run, not recorded
    stage_seconds: dict[str, float] = field(default_factory=dict)     # keys from STAGES
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def measurement_seconds(self) -> float:
        return sum(self.stage_seconds.get(s, 0.0) for s in MEASURE_STAGES)

    @property
    def overhead_share(self) -> float:
        """Share of the sweep's wall time spent outside measurement (counting, export, build, roofline, store...)."""
        return 1.0 - self.measurement_seconds / self.seconds if self.seconds > 0 else 0.0


class Measured(NamedTuple):
    """One network measured at one shape: stored for every point it stands for."""

    latency: LatencyStats
    layers: LayerReport | None
    engine_key: str


@dataclass
class SweepRun:
    """What the groups of one run share."""

    config: SweepConfig
    stages: Stages
    store: Store
    sweep_id: int
    envs: dict[str, tuple[str, dict]]       # target name -> (environment key, environment)
    out_dir: Path
    force: bool
    replace: set[tuple[str, str]]           # (target, point key) of stored points to measure again
    progress: Progress
    result: SweepResult
    # (spec key, batch, resolution, precision, flavour, target) -> measured earlier in this run
    measured: dict[tuple, Measured] = field(default_factory=dict)


class Executor(ABC):
    """Where a run's groups go."""

    def environments(self, config: SweepConfig, stages: Stages, say: Callable[[str], None]) -> dict:
        """Target name -> (environment key, environment) of every target that can be measured now;
        a target left out is pending (the executor says why, in one line). By default every
        target, probed here."""
        return {t.name: stages.environment(t) for t in config.targets}

    @abstractmethod
    def run(self, sweep: SweepRun, groups: list[list[Point]], say: Callable[[str], None]) -> None:
        """Measure and store every point of ``groups`` (counted into ``sweep.result``)."""

    def close(self) -> None:
        """Called once the sweep is over (or stopped)."""
