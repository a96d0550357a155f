"""A sweep's timing in interleaved rounds (scaleprof.profile.rounds), target by target.

1. Every group is prepared (scaled, counted, exported, built); a network and shape that several
   points share (s = 1 under every strategy) is timed once.
2. Each target's ready points are timed in rounds, with the target's base network at batch 1 as
   the control (where no point is it, the smallest network timed: no engine is built for it). Each
   finished round is stored (its control, its /proc evidence, each point's samples), so a stopped
   sweep loses at most the round in flight: a re-run resumes from them.
   Engines stay loaded within a memory budget (a quarter of the machine's memory, from their
   counts); beyond it the least recently timed are released and loaded again at their next slice.
3. Each point's pooled figures, with how they were obtained (rounds kept and discarded, contended
   or not), are stored after its layer profile, which stays per point.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict
from typing import Callable

from scaleprof.core.limits import inference_bytes, machine_memory
from scaleprof.profile.contention import ContentionWatch, wait_until_quiet
from scaleprof.profile.rounds import Interleaver, Pooled, Round, RoundSettings, SliceTimer, pooled_stats
from scaleprof.profile.types import LatencyStats
from scaleprof.sweep.config import Point
from scaleprof.sweep.store import StoreError

MEMORY_SHARE = 0.25          # of the machine's memory that loaded engines may take (estimated from counts)
ENGINE_OVERHEAD = 3          # a runtime's session holds about this many times the tensors it runs


def measure_in_rounds(sweep, groups: list, say: Callable[[str], None]) -> None:
    """``groups``: the run's PointGroups (scaleprof.sweep.runner), prepared, timed and stored here."""
    planned: dict[tuple, Point] = {}
    ready: dict[str, list[tuple]] = defaultdict(list)
    try:
        for group in groups:
            for point in prepare(group, planned):
                ready[group.target.name].append((group, point))
        for target, timed in ready.items():
            TargetRounds(sweep, target, timed, say).run()
        for group in groups:
            store_aliases(group)
    finally:
        for group in groups:
            group.release()


def prepare(group, planned: dict[tuple, Point]) -> list[Point]:
    """Scale, count, export and build a group; the points it times. A point whose network and shape
    an earlier group times (``planned``: measured key -> that point) waits for its figures
    (store_aliases). A failure is recorded for the group's points, and nothing is timed."""
    try:
        group.scale_and_count()
        fresh = [p for p in group.store_measured_earlier()
                 if group.replacing(p) or not group.sweep.store.is_measured(p.key, p.target, group.env_key)]
        for done in set(group.pending) - set(fresh):       # a concurrent sweep got there first
            group.finished(done, None, stored=False)
        timed = [p for p in fresh if group.measured_key(p) not in planned]
        if timed:
            group.export_and_build(timed)
        for point in timed:
            planned[group.measured_key(point)] = point
        return timed
    except (StoreError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - isolate the failure to this group's points
        group.fail_pending(err)
        group.release()
        return []


def store_timed(group, point: Point, latency: LatencyStats) -> None:
    """Profile the layers of a point timed in rounds and store it; a failure is this point's alone."""
    try:
        group.keep(point, latency)
    except (StoreError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - isolate the failure to this point
        group.fail_pending(err, [point])


def store_aliases(group) -> None:
    """Store the group's points whose network and shape another group timed, with its figures."""
    for point in list(group.pending):
        if group.measured_key(point) in group.sweep.measured:
            group.store_ok(point, group.sweep.measured[group.measured_key(point)], reused=True)
        else:
            group.current = "time"
            group.fail_pending(RuntimeError("the same network at this shape failed in another point"), [point])


class EngineShelf:
    """Runners of engines loaded on demand, the least recently used released beyond ``budget`` bytes."""

    def __init__(self, stages, budget: int):
        self.stages = stages
        self.budget = budget
        self.loaded: OrderedDict[int, tuple] = OrderedDict()      # id(engine) -> (engine, bytes)
        self.runners: dict[tuple, Callable[[], float]] = {}
        self.methods: dict[tuple, str] = {}

    def runner(self, engine, size: int, batch: int, resolution: int) -> Callable[[], float]:
        key = (id(engine), batch, resolution)

        def run() -> float:
            inner = self.runners.get(key)
            if inner is None:
                self._load(engine, size)
                inner = self.runners[key] = self.stages.runner(engine, batch, resolution)
                self.methods[key] = getattr(inner, "timing_method", "perf_counter")
            else:
                self.loaded.move_to_end(id(engine))
            return inner()
        run.key = key
        return run

    def _load(self, engine, size: int) -> None:
        while self.loaded and sum(b for _, b in self.loaded.values()) + size > self.budget:
            ident, (old, _) = next(iter(self.loaded.items()))
            if ident == id(engine):
                break
            self.release(old)
        self.loaded[id(engine)] = (engine, size)

    def release(self, engine) -> None:
        if self.loaded.pop(id(engine), None) is not None:
            self.runners = {k: v for k, v in self.runners.items() if k[0] != id(engine)}
            self.stages.release(engine)


class TargetRounds:
    """One target's ready points timed in rounds, then stored."""

    def __init__(self, sweep, target: str, timed: list[tuple], say: Callable[[str], None]):
        self.sweep = sweep
        self.say = say
        self.target = sweep.config.target(target)
        self.env_key = sweep.envs[target][0]
        self.timed = timed                   # (PointGroup, Point)
        self.settings = RoundSettings.from_timing(sweep.config.timing)
        self.shelf = EngineShelf(sweep.stages, _memory_budget())
        self.control_key = ""                # the point whose network is the control

    def run(self) -> None:
        start = time.perf_counter()
        timers = {p.key: SliceTimer(self.runner(g, p)) for g, p in self.timed}
        try:
            group, point = self.control()
            self.control_key = point.key
            control = SliceTimer(self.runner(group, point))
            resumed = self.resumed()
            self.say(f"{self.target.name}: timing {len(timers)} network(s) in interleaved rounds of "
                     f"{self.settings.slice_s:.2g} s slices, with {point.label} as the control network"
                     + (f"; resuming from {len(resumed)} stored round(s)" if resumed else ""))
            interleaver = Interleaver(timers, control, self.settings, rounds=resumed,
                                      on_round=self.store_round, watch=lambda: ContentionWatch(self.target.device),
                                      before_round=self.wait_quiet)
            pooled = interleaver.run()
            contended = sum(interleaver.judge.contended(r.index) for r in interleaver.rounds)
            self.say(f"{self.target.name}: {len(interleaver.rounds)} round(s), {contended} contended (the control "
                     f"ran over {100 * self.settings.tolerance:.0f}% slower than its best) and set aside")
        except StoreError:
            raise
        except Exception as err:  # noqa: BLE001 - the control failed: every point of the target with it
            for group, point in self.timed:
                group.current = "time"
                group.fail_pending(RuntimeError(f"control network: {err}"), [point])
            return
        finally:
            self.account(time.perf_counter() - start)
        for group, point in self.timed:
            if point.key in interleaver.failed:
                group.current = "time"
                group.fail_pending(interleaver.failed[point.key], [point])
            else:
                store_timed(group, point, self.latency(group, point, pooled[point.key]))
        for group in {id(g): g for g, _ in self.timed}.values():      # memory for the next target
            group.release()

    def runner(self, group, point: Point) -> Callable[[], float]:
        resolution = group.resolution(point)
        counts = group.counts[resolution]
        return self.shelf.runner(group.engine, _engine_bytes(counts, point, resolution), point.batch, resolution)

    def control(self) -> tuple:
        """(group, point) whose network is the control: the target's base network at batch 1 where
        a point is it, else the smallest network timed (no engine is built for the control)."""
        base = [(g, p) for g, p in self.timed if p.scale == 1.0 and p.batch == 1]
        if base:
            return base[0]
        return min(self.timed, key=lambda gp: (gp[0].counts[gp[0].resolution(gp[1])].flops * gp[1].batch, gp[1].key))

    def resumed(self) -> list[Round]:
        """The stored rounds of an earlier, stopped run that hold slices of these points (the slices of
        points measured afresh, --force or --remeasure-noisy, are forgotten first)."""
        store = self.sweep.store
        store.forget_slices(self.target.name, self.env_key, [p.key for g, p in self.timed if g.replacing(p)])
        keys = {p.key for _, p in self.timed}
        out = []
        for r in store.rounds(self.target.name, self.env_key):
            slices = {k: v for k, v in r["slices"].items() if k in keys}
            if slices and r["control"] == self.control_key:        # medians of one control compare
                out.append(Round(r["index"], r["seconds"], r["control_ms"], slices, r["evidence"]))
        return out

    def store_round(self, done: Round) -> None:
        self.sweep.store.put_round(self.target.name, self.env_key, self.sweep.sweep_id, done.index, done.seconds,
                                   self.control_key, done.control_ms, done.evidence, done.slices)
        self.sweep.progress.show(self.timed[0][1], f"timing: round {done.index + 1} ({len(done.slices)} points)")

    def wait_quiet(self) -> None:
        if self.sweep.config.timing.wait_quiet_s > 0:
            wait_until_quiet(self.sweep.config.timing.wait_quiet_s)

    def latency(self, group, point: Point, pooled: Pooled) -> LatencyStats:
        method = self.shelf.methods.get((id(group.engine), point.batch, group.resolution(point)), "perf_counter")
        group.seconds["time"] = group.seconds.get("time", 0.0) + pooled.seconds
        return pooled_stats(pooled, point.batch, method)

    def account(self, seconds: float) -> None:
        totals = self.sweep.result.stage_seconds
        totals["time"] = totals.get("time", 0.0) + seconds


def _engine_bytes(counts, point: Point, resolution: int) -> int:
    return ENGINE_OVERHEAD * inference_bytes(counts.params, counts.acts, point.batch, resolution, point.precision)


def _memory_budget() -> int:
    return int(MEMORY_SHARE * machine_memory())
