"""``--jobs N``: the preparing stages of upcoming groups (scaling search, counting, export, engine
builds with their layer counts) in N worker processes; measurement stays in this process, one point
at a time, on each device.

The workers only fill the output directory's caches (scaleprof.sweep.executors.plan); the groups
then run here as they do without workers and find their networks prepared. A worker that fails
leaves its network unprepared: the group runs the stage itself and records the error in it, as it
would have anyway.

On a CPU target, preparing beside the timing would distort it (both want the same cores), so every
network is prepared first and measurement starts once the workers are gone. With GPU targets only,
preparation overlaps measurement (the CPU work of exports and the GPU's timing hardly meet; the
report's noise figures show whether that held), and each group is timed as it is ready, one point
after the other, not in interleaved rounds.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from scaleprof.sweep.config import Point
from scaleprof.sweep.executor import Executor, SweepRun
from scaleprof.sweep.executors.plan import NetworkPlan, network_of, network_plans, prepare_network
from scaleprof.sweep.runner import PointGroup, measure_groups
from scaleprof.sweep.stages import Stages

PREPARE_STAGE = "prepare"        # SweepResult.stage_seconds: time spent waiting for the workers


class PreparingExecutor(Executor):
    """Prepares in ``jobs`` worker processes; measures here."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, sweep: SweepRun, groups: list[list[Point]], say: Callable[[str], None]) -> None:
        plans = network_plans(sweep.config, groups)
        if not plans:
            return
        devices = {sweep.config.target(g[0].target).device for g in groups}
        overlap = not any(d == "cpu" for d in devices)
        say(f"preparing {len(plans)} network{'s' if len(plans) != 1 else ''} in {self.jobs} worker processes "
            + ("while measuring (GPU targets only: see the report's noise figures)" if overlap else
               "before measuring (a CPU target: preparation never overlaps timing)"))
        if not overlap:             # all of it before any timing: the biggest networks first, for an even finish
            plans = sorted(plans, key=lambda plan: plan.point.scale, reverse=True)
        pool = _worker_pool(self.jobs)
        try:
            futures = {p.network: pool.submit(prepare_quietly, sweep.stages, p, sweep.out_dir, sweep.config.layers)
                       for p in plans}
            if not overlap:
                self._wait(sweep, list(futures.values()))
                pool.shutdown()
                measure_groups(sweep, groups, say)       # in interleaved rounds, as without workers
                return
            for group in groups:
                if overlap:
                    self._wait(sweep, [futures[network_of(group[0])]])
                PointGroup(sweep, group).run()
        finally:
            pool.shutdown(cancel_futures=True)

    @staticmethod
    def _wait(sweep: SweepRun, futures: list[Future]) -> None:
        start = time.perf_counter()
        wait(futures)
        seconds = sweep.result.stage_seconds
        seconds[PREPARE_STAGE] = seconds.get(PREPARE_STAGE, 0.0) + time.perf_counter() - start


def _worker_pool(jobs: int) -> ProcessPoolExecutor:
    """Fresh interpreters (spawn): a forked copy of a process that has started torch's or CUDA's
    threads can hang. Each worker gets its share of the cores for torch's and ONNX Runtime's pools."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_share_cores, initargs=(threads,))


def _share_cores(threads: int) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def prepare_quietly(stages: Stages, plan: NetworkPlan, out_dir: Path, layers: bool) -> bool:
    """In a worker: prepare ``plan`` into ``out_dir``'s caches. False when a stage failed; the group
    meets the same error when it runs that stage and records it there."""
    try:
        stages.open(Path(out_dir))
        prepare_network(stages, plan, Path(out_dir), build=True, layers=layers)
        return True
    except Exception:  # noqa: BLE001 - reported by the group that runs the stage again
        return False

