"""Interleaved rounds and the control network, on a fake clock: fake networks advance the clock by
their latency times the slowdown a scripted neighbour causes at that moment."""

from __future__ import annotations

import os
import statistics
import time

import pytest

from scaleprof.profile.control import ControlJudge, busy_throughout
from scaleprof.profile.rounds import Interleaver, RoundSettings, SliceTimer

TRUE_MS = {"a": 2.0, "b": 5.0, "c": 11.0, "d": 23.0}
CONTROL_MS = 3.0
SETTINGS = RoundSettings(slice_s=0.1, min_rounds=3, min_iters=10, target_ci=0.0, max_time_s=0.3,
                         retry_budget_s=5.0, warmup_iters=0, warmup_s=0.0, first_warmup_iters=0, seed=1)


class World:
    """A fake clock (seconds) and a neighbour that slows everything by ``factor`` while it runs."""

    def __init__(self, busy=(), factor=2.0):
        self.now = 0.0
        self.busy = list(busy)          # (start, end) seconds
        self.factor = factor

    def clock(self) -> float:
        return self.now

    def slowdown(self) -> float:
        return self.factor if any(a <= self.now < b for a, b in self.busy) else 1.0

    def runner(self, ms: float):
        def run() -> float:
            took = ms * self.slowdown()
            self.now += took / 1000
            return took
        return run

    def timers(self):
        return {k: SliceTimer(self.runner(ms), self.clock) for k, ms in TRUE_MS.items()}

    def control(self):
        return SliceTimer(self.runner(CONTROL_MS), self.clock)


def _run(world, settings=SETTINGS, **kw):
    lv = Interleaver(world.timers(), world.control(), settings, clock=world.clock, **kw)
    return lv, lv.run()


def test_quiet_machine_pools_every_round_and_shuffles_the_order():
    world = World()
    lv, pooled = _run(world)
    assert all(statistics.median(p.samples) == TRUE_MS[k] for k, p in pooled.items())
    assert all(p.kept == SETTINGS.min_rounds and p.discarded == 0 and not p.contended for p in pooled.values())
    # every round times every network, and not always in the same order
    assert all(set(r.slices) == set(TRUE_MS) for r in lv.rounds)
    orders = {tuple(r.slices) for r in lv.rounds}
    assert len(orders) > 1


def test_a_neighbour_mid_sweep_is_discarded_by_the_control():
    # a neighbour during the second round only: timed point after point, it would land on one of them
    world = World(busy=[(0.65, 1.2)])
    lv, pooled = _run(world)
    for key, p in pooled.items():
        assert statistics.median(p.samples) == pytest.approx(TRUE_MS[key])
        assert max(p.samples) == pytest.approx(TRUE_MS[key])       # no slowed sample was pooled
        assert p.kept == SETTINGS.min_rounds and not p.contended
    assert sum(p.discarded for p in pooled.values()) >= 1
    assert any(lv.judge.contended(r.index) for r in lv.rounds)


def test_without_the_control_the_neighbour_would_have_landed_in_the_figures():
    # the same neighbour with a tolerance nothing exceeds: the slowed slices are pooled
    world = World(busy=[(0.65, 1.2)])
    _, pooled = _run(world, RoundSettings(**{**SETTINGS.__dict__, "tolerance": 10.0}))
    assert any(max(p.samples) > 1.5 * TRUE_MS[k] for k, p in pooled.items())


def test_a_neighbour_that_stays_past_the_budget_leaves_points_contended():
    world = World(busy=[(0.4, 1e9)])           # arrives during round 1 and never leaves
    lv, pooled = _run(world)
    assert all(p.contended and p.kept < SETTINGS.min_rounds for p in pooled.values())
    assert "rounds quiet" in pooled["a"].reason
    assert lv.contended_seconds() > SETTINGS.retry_budget_s


def test_a_neighbour_throughout_is_seen_by_proc_not_by_the_control():
    class Busy:
        result = {"other_share": 0.9, "other_cores": 1.8, "cores": 2, "flagged": True}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    world = World(busy=[(0.0, 1e9)])           # slows every round alike: the control cannot tell
    _, pooled = _run(world, watch=Busy)
    assert all(p.contended and p.discarded == 0 for p in pooled.values())
    assert "every round" in pooled["b"].reason
    assert pooled["b"].evidence["other_share"] == 0.9


def test_a_stopped_run_resumes_from_its_finished_rounds():
    world = World()
    stored = []

    def stop_after_two(r):
        stored.append(r)
        if len(stored) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(world, on_round=stop_after_two)
    lv, pooled = _run(world, rounds=list(stored))
    assert [r.index for r in lv.rounds] == [0, 1, 2]
    assert all(p.kept == 3 for p in pooled.values())


def test_the_judge_rejudges_early_rounds_against_a_later_best():
    judge = ControlJudge(tolerance=0.1)
    judge.record(0, [13.0, 12.9])      # looked fine alone
    judge.record(1, [10.0, 10.1])
    assert judge.contended(0) and not judge.contended(1)
    assert judge.quiet_rounds() == {1}


def test_busy_throughout_needs_every_round_busy():
    busy, quiet = {"other_share": 0.8}, {"other_share": 0.05}
    assert busy_throughout([busy, busy]) == busy
    assert busy_throughout([busy, quiet]) is None
    assert busy_throughout([busy, None]) is None and busy_throughout([]) is None


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="busy loops started the Linux way")
def test_a_real_busy_loop_on_every_core_makes_its_rounds_contended():
    from tests.profile.test_contention import _hogs, _stop, _usable_cores

    def work(n):
        def run() -> float:
            start = time.perf_counter()
            sum(range(n))
            return (time.perf_counter() - start) * 1000
        return run

    # inferences longer than the scheduler's time slice, as a network's are: a neighbour then shows in the median
    settings = RoundSettings(slice_s=0.15, min_rounds=2, min_iters=5, target_ci=None, max_time_s=1.0,
                             retry_budget_s=0.0, warmup_iters=1, warmup_s=0.0, first_warmup_iters=3, seed=0)
    lv = Interleaver({n: SliceTimer(work(n)) for n in (400_000, 800_000)}, SliceTimer(work(600_000)), settings)
    quiet = [lv.run_round(list(lv.timers)) for _ in range(3)]
    hogs = _hogs(4 * _usable_cores())     # a neighbour on every core this process may use, several times over
    try:
        busy = [lv.run_round(list(lv.timers)) for _ in range(2)]
    finally:
        _stop(hogs)
    assert all(lv.judge.contended(r.index) for r in busy), [lv.judge.ratio(r.index) for r in quiet + busy]
    assert all(r not in busy for r in lv.quiet(400_000))
