"""``--ray auto|ADDRESS``: each target's groups run on the Ray hosts that declare it; this process
(the driver) is the only writer of the results store.

1. Targets: a target whose resource no host offers is pending (one line; its points are neither run
   nor recorded, so a later run measures them). Every other target's environment is probed on a
   host that serves it: the store keys its points by it, so a re-run skips what is measured.
2. Preparation: each network is scaled, counted and exported once, by a task on any node with a
   free CPU; the ONNX file reaches the measuring hosts through the object store.
3. Measurement: each bundle (the groups of one target that share a network) is a task pinned to its
   target's resource: the engine is built and timed on the host that owns the device. CPU-target
   bundles on a machine where preparation runs start only once every network is prepared.
4. Recording: the driver stores each returned point in its own transaction, group by group in grid
   order (``GridOrder``: the local executor's order, hence the same report). A task lost with its
   worker or node is retried (``MAX_RETRIES``); a killed driver leaves every recorded point whole,
   and its re-run measures only the rest; a target whose last host leaves mid-sweep turns pending.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Callable

from scaleprof import __version__
from scaleprof.core.text import first_line
from scaleprof.errors import EnvironmentProblem, ScaleprofError
from scaleprof.sweep.config import Point, SweepConfig
from scaleprof.sweep.executor import Executor, SweepRun
from scaleprof.sweep.executors.plan import Bundle, bundles, network_plans
from scaleprof.sweep.executors.ray_cluster import RayCluster, resource_of, serve_command
from scaleprof.sweep.executors.ray_tasks import (
    MEASURE_RUNTIME_ENV,
    BundleOutcome,
    CacheLocation,
    measure,
    prepare,
    probe,
)
from scaleprof.sweep.runner import PointGroup
from scaleprof.sweep.stages import Stages

MAX_RETRIES = 3          # a task whose worker or node dies runs again, up to this many times
POLL_S = 2.0             # how often the driver looks for targets whose hosts left


class RayExecutor(Executor):
    def __init__(self, address: str = "auto"):
        self.address = address
        self.cluster: RayCluster | None = None

    # ------------------------------------------------------------------------ targets
    def environments(self, config: SweepConfig, stages: Stages, say: Callable[[str], None]) -> dict:
        self.cluster = RayCluster.connect(self.address, lambda: _measurable_here(config, stages))
        offered = self.cluster.offered()
        served = [t for t in config.targets if resource_of(t.name) in offered]
        for target in config.targets:
            if target not in served:
                say(f"target {target.name!r}: pending, no host in the Ray cluster offers {resource_of(target.name)!r} "
                    f"(on a host that can measure it: {serve_command(self.cluster.address, target.name)})")
        ray = self.cluster.ray
        task = ray.remote(num_cpus=0, max_retries=MAX_RETRIES)(probe)
        refs = [task.options(resources=self.cluster.measurement_resources(t.name)).remote(stages, t) for t in served]
        try:
            answers = ray.get(refs)
        except Exception as err:  # noqa: BLE001 - a host that cannot run scaleprof's tasks at all
            raise EnvironmentProblem(f"a Ray host cannot run scaleprof: {first_line(str(err))}") from None
        envs = {}
        for target, answer in zip(served, answers):
            if "error" in answer:
                raise EnvironmentProblem(f"{answer['error']} (on Ray host {answer['host']})")
            if answer["version"] != _version():
                raise EnvironmentProblem(f"Ray host {answer['host']} runs scaleprof {answer['version']}, this driver "
                                         f"{_version()}: install the same version on every host")
            envs[target.name] = answer["env"]
        return envs

    # ------------------------------------------------------------------------ the run
    def run(self, sweep: SweepRun, groups: list[list[Point]], say: Callable[[str], None]) -> None:
        if not groups:
            return
        ray = self.cluster.ray
        todo = bundles(groups)
        order = GridOrder(groups, todo)
        prepared, submit = self._tasks(sweep, groups, say)
        later = {i for i, b in enumerate(todo) if prepared and self._waits_for_preparation(sweep.config, b)}
        if later:
            say("CPU targets share a machine with preparation: they are measured once every network is prepared")
        in_flight = {submit(b): i for i, b in enumerate(todo) if i not in later}
        unmeasured = Counter(b.network for b in todo)          # a network's file is dropped after its last bundle
        while in_flight or later:
            if later and _all_ready(ray, list(prepared.values())):
                in_flight.update({submit(todo[i]): i for i in sorted(later)})
                later = set()
            if in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
            else:                                    # only bundles that wait for the preparation
                ready = []
                ray.wait(list(prepared.values()), num_returns=len(prepared), timeout=POLL_S)
            for ref in ready:
                index = in_flight.pop(ref)
                order.arrived(index, self._outcome(sweep, todo[index], ref))
                unmeasured[todo[index].network] -= 1
                if not unmeasured[todo[index].network]:
                    prepared.pop(todo[index].network, None)
            if not ready:
                later -= self._drop_unserved(todo, in_flight, later, order, say)
            for group, outcome in order.next_groups():
                _record(sweep, group, outcome)

    def _tasks(self, sweep: SweepRun, groups: list[list[Point]], say):
        """Submit every network's preparation; -> (network -> its ref, a function that submits a
        bundle's measurement)."""
        ray = self.cluster.ray
        cache = CacheLocation(socket.gethostname(), str(sweep.out_dir.resolve()))
        stages_ref, config_ref = ray.put(sweep.stages), ray.put(sweep.config)
        prepared = {}
        if self.cluster.offered().get("CPU", 0) > 0:
            task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(prepare)
            prepared = {plan.network: task.remote(stages_ref, plan, cache)
                        for plan in network_plans(sweep.config, groups)}
        else:
            say("no node of the Ray cluster offers CPUs: each host prepares the networks it measures")
        task = ray.remote(num_cpus=0, max_retries=MAX_RETRIES, runtime_env=MEASURE_RUNTIME_ENV)(measure)

        def submit(bundle: Bundle):
            args = [prepared[bundle.network]] if bundle.network in prepared else []
            return task.options(resources=self.cluster.measurement_resources(bundle.target)).remote(
                stages_ref, config_ref, bundle.groups, sweep.force, cache, *args)

        return prepared, submit

    def _waits_for_preparation(self, config: SweepConfig, bundle: Bundle) -> bool:
        target = config.target(bundle.target)
        return target.device == "cpu" and self.cluster.shares_machine_with_preparation(target.name)

    def _outcome(self, sweep: SweepRun, bundle: Bundle, ref) -> BundleOutcome:
        """The task's outcome, its host's environment stored and its stage seconds counted."""
        try:
            outcome: BundleOutcome = self.cluster.ray.get(ref)
        except Exception as err:  # noqa: BLE001 - a task that failed past its retries
            return BundleOutcome(None, error=f"the Ray task failed: {first_line(str(err))}")
        if outcome.env is not None:
            target = sweep.config.target(bundle.target)
            env_key, env = outcome.env
            if env_key != sweep.envs[target.name][0]:          # another host of the target measured it
                sweep.store.put_environment(env_key, target.to_dict(), env)
        totals = sweep.result.stage_seconds
        for stage, seconds in outcome.stage_seconds.items():
            totals[stage] = totals.get(stage, 0.0) + seconds
        return outcome

    def _drop_unserved(self, todo: list[Bundle], in_flight: dict, later: set[int], order: "GridOrder",
                       say) -> set[int]:
        """Bundles whose target no host offers any more are pending: cancelled, not recorded."""
        offered = self.cluster.offered()
        waiting = {i: ref for ref, i in in_flight.items()} | {i: None for i in later}
        lost = {i: ref for i, ref in waiting.items() if resource_of(todo[i].target) not in offered}
        for index, ref in lost.items():
            if ref is not None:
                self.cluster.ray.cancel(ref, force=True)
                del in_flight[ref]
            order.arrived(index, PENDING)
        for name in sorted({todo[i].target for i in lost}):
            count = sum(len(todo[i].points) for i in lost if todo[i].target == name)
            say(f"target {name!r}: pending, its last host left the Ray cluster; {count} points not measured "
                "(a re-run measures them)")
        return set(lost)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()


PENDING = BundleOutcome(None, error="pending")       # a bundle whose target lost its last host


class GridOrder:
    """Hands out the groups' outcomes in grid order: the order the runner's own executor stores
    points in (so that both write the same report). A finished bundle's groups wait for the groups
    before them; a driver killed meanwhile leaves them to the re-run."""

    def __init__(self, groups: list[list[Point]], todo: list[Bundle]):
        bundle_of = {id(group): index for index, bundle in enumerate(todo) for group in bundle.groups}
        self.groups = [(group, bundle_of[id(group)]) for group in groups]
        self.outcomes: dict[int, BundleOutcome] = {}
        self.next = 0

    def arrived(self, bundle_index: int, outcome: BundleOutcome) -> None:
        self.outcomes[bundle_index] = outcome

    def next_groups(self):
        while self.next < len(self.groups) and self.groups[self.next][1] in self.outcomes:
            group, index = self.groups[self.next]
            self.next += 1
            yield group, self.outcomes[index]


def _record(sweep: SweepRun, group: list[Point], outcome: BundleOutcome) -> None:
    """Store the group's points, one transaction each, and count them."""
    if outcome is PENDING:
        sweep.result.pending += len(group)
        return
    if outcome.error:
        failing = PointGroup(sweep, group)
        failing.current = "ray"
        failing.fail_pending(EnvironmentProblem(outcome.error))
        return
    points = {p.key: p for p in group}
    totals = sweep.result.stage_seconds
    for rec in outcome.records:
        if rec.point_key in points:
            start = time.perf_counter()
            replacing = sweep.force or (rec.target, rec.point_key) in sweep.replace
            stored = sweep.store.put_point(rec, sweep.sweep_id, force=replacing)
            totals["store"] = totals.get("store", 0.0) + time.perf_counter() - start
            _count(sweep, points[rec.point_key], rec, stored, rec.point_key in outcome.reused)


def _count(sweep: SweepRun, point: Point, rec, stored: bool, reused: bool) -> None:
    result = sweep.result
    if rec.status != "ok":
        result.failed += 1
        result.failures.append((point.label, rec.error))
        sweep.progress.advance(point, None, failed=rec.error)
    elif stored:
        result.measured += 1
        result.reused += reused
        sweep.progress.advance(point, rec.latency)
    else:                       # a concurrent sweep stored it first: its measurement stands
        result.skipped += 1
        sweep.progress.advance(point, None)


def _all_ready(ray, refs: list) -> bool:
    return not refs or len(ray.wait(refs, num_returns=len(refs), timeout=0)[0]) == len(refs)


def _measurable_here(config: SweepConfig, stages: Stages) -> list[str]:
    """The targets whose backend this machine has (for a cluster of this machine alone)."""
    names = []
    for target in config.targets:
        try:
            stages.environment(target)
            names.append(target.name)
        except ScaleprofError:
            pass
    return names


def _version() -> str:
    return __version__
