"""Interleaved rounds: timing several networks so that a slowdown falls on all of them alike.

Timing one network after the other puts whatever the machine does during a network's few seconds
on that network alone. Here each round times every network still measuring for a short slice, in a
shuffled order, with a control network (scaleprof.profile.control) at the round's start and end; a
network's statistics pool the slices of its quiet rounds. A round whose control ran slow is
contended: its slices are set aside (kept as evidence, never pooled) and more rounds run, within a
time budget. A network that could not get its quiet rounds within that budget is contended.

    timers = {"b0": SliceTimer(runner_b0), "b4": SliceTimer(runner_b4)}
    pooled = Interleaver(timers, SliceTimer(control_runner), RoundSettings()).run()
    pooled["b4"].samples, pooled["b4"].kept, pooled["b4"].contended

Everything that touches a clock or the machine is passed in, so the logic runs on fake clocks.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Hashable

from scaleprof.profile.control import TOLERANCE, ControlJudge, busy_throughout
from scaleprof.profile.stats import ci_relative_halfwidth, latency_stats
from scaleprof.profile.types import LatencyStats, TimingSettings

CONTROL_EVERY = 8          # the control is timed at a round's start, after every this many slices, and at its end
BUSY_THROUGHOUT = "other processes took"     # how a Pooled.reason names a neighbour that never left
MIN_SLICE_ITERS = 3        # a slice holds at least this many samples, however long one takes


@dataclass(frozen=True)
class RoundSettings:
    slice_s: float = 0.2              # timed seconds of one network in one round
    min_rounds: int = 3               # quiet rounds every network needs
    min_iters: int = 10               # pooled samples every network needs
    target_ci: float | None = 0.01    # then stop once the median's 95% CI is within this fraction
    max_time_s: float = 10.0          # or once this many quiet seconds are pooled
    tolerance: float = TOLERANCE      # control slower than its best by more than this: contended round
    retry_budget_s: float = 60.0      # seconds of contended rounds after which no more are run
    warmup_iters: int = 1             # untimed iterations before each slice (caches after a switch)
    warmup_s: float = 0.05            # and untimed seconds (a runtime's idle threads of the network before
                                      # may still spin: ONNX Runtime's do, for a while)
    first_warmup_iters: int = 10      # before a network's first slice
    seed: int | None = None           # of the shuffle (None: a fresh order every run)
    max_rounds: int = 200             # whatever else happens (a clock that does not move)

    @classmethod
    def from_timing(cls, timing: TimingSettings, seed: int | None = None) -> "RoundSettings":
        rounds = max(1, timing.rounds)
        slice_s = max(timing.min_time_s / rounds, 0.02)
        return cls(slice_s=slice_s, warmup_s=min(0.05, slice_s / 4), min_rounds=rounds, min_iters=timing.min_iters,
                   target_ci=timing.target_ci, max_time_s=timing.max_time_s, tolerance=timing.control_tolerance,
                   retry_budget_s=timing.retry_budget_s, first_warmup_iters=timing.warmup_iters, seed=seed)


class SliceTimer:
    """Times ``runner()`` (one inference, returns ms) for a slice: a few untimed iterations, then
    timed ones until the slice's seconds are spent (and at least MIN_SLICE_ITERS ran)."""

    def __init__(self, runner: Callable[[], float], clock: Callable[[], float] = time.perf_counter):
        self.runner = runner
        self.clock = clock
        self.slices = 0

    def __call__(self, seconds: float, warmup_iters: int, warmup_s: float = 0.0) -> list[float]:
        start = self.clock()
        warm = 0
        while warm < warmup_iters or self.clock() - start < warmup_s:
            self.runner()
            warm += 1
        samples: list[float] = []
        start = self.clock()
        while len(samples) < MIN_SLICE_ITERS or self.clock() - start < seconds:
            samples.append(float(self.runner()))
        self.slices += 1
        return samples


@dataclass
class Round:
    """One round: the control's slice medians, each network's samples, and what /proc saw meanwhile."""

    index: int
    seconds: float
    control_ms: list[float]
    slices: dict[Hashable, list[float]]
    evidence: dict | None = None      # Contention.to_dict() of the round, where /proc can be read


@dataclass(frozen=True)
class Pooled:
    """A network's samples pooled over its quiet rounds, and how they were obtained."""

    samples: tuple[float, ...]
    kept: int                         # quiet rounds pooled
    discarded: int                    # contended rounds set aside
    contended: bool                   # could not be measured faithfully
    reason: str = ""                  # why, when contended
    seconds: float = 0.0              # wall seconds of the pooled rounds' slices
    evidence: dict | None = None      # /proc over the pooled rounds (the busiest of them)

    def provenance(self) -> dict:
        """What the store, CSV and report say under the figure."""
        return {"kept": self.kept, "discarded": self.discarded, "contended": self.contended,
                "reason": self.reason}


@dataclass
class Interleaver:
    """Runs rounds over ``timers`` (key -> SliceTimer-like callable) until each is measured or the
    retry budget is spent. ``rounds``: rounds run before (a resumed measurement); ``on_round`` is
    called with each finished round (to store it: a stopped run then loses only the round in
    flight); ``watch()`` gives a context manager whose ``result`` is the round's /proc evidence."""

    timers: dict[Hashable, Callable[..., list[float]]]     # (seconds, warm-up iterations, warm-up seconds)
    control: Callable[..., list[float]]
    settings: RoundSettings = RoundSettings()
    rounds: list[Round] = field(default_factory=list)
    on_round: Callable[[Round], None] | None = None
    watch: Callable[[], object] | None = None
    clock: Callable[[], float] = time.perf_counter
    before_round: Callable[[], None] | None = None     # e.g. wait for a quiet machine

    def __post_init__(self):
        self.judge = ControlJudge(self.settings.tolerance)
        for r in self.rounds:
            self.judge.record(r.index, r.control_ms)
        self.rng = random.Random(self.settings.seed)
        self.warm: set = {k for r in self.rounds for k in r.slices} | ({"control"} if self.rounds else set())
        self.failed: dict[Hashable, Exception] = {}     # networks whose timing raised: out of later rounds

    def run(self) -> dict[Hashable, Pooled]:
        """Each network's pooled figures (those in ``failed`` left out)."""
        while True:
            todo = [k for k in self.timers if k not in self.failed and not self.measured(k)]
            if (not todo or self.contended_seconds() > self.settings.retry_budget_s
                    or len(self.rounds) >= self.settings.max_rounds):
                break
            self.run_round(todo)
        return {k: self.pooled(k) for k in self.timers if k not in self.failed}

    def run_round(self, keys: list[Hashable]) -> Round:
        order = list(keys)
        self.rng.shuffle(order)
        if self.before_round is not None:
            self.before_round()
        watch = self.watch() if self.watch else None
        start = self.clock()
        slices: dict[Hashable, list[float]] = {}
        control: list[float] = []
        if watch is not None:
            watch.__enter__()
        try:
            control.append(_median(self._slice("control", self.control)))
            for n, key in enumerate(order, 1):
                if n % CONTROL_EVERY == 0:
                    control.append(_median(self._slice("control", self.control)))
                try:
                    slices[key] = self._slice(key, self.timers[key])
                except Exception as err:  # noqa: BLE001 - one network's failure is its own
                    self.failed[key] = err
            control.append(_median(self._slice("control", self.control)))
        finally:
            if watch is not None:
                watch.__exit__(None, None, None)
        result = getattr(watch, "result", None)
        evidence = result.to_dict() if hasattr(result, "to_dict") else result
        index = self.rounds[-1].index + 1 if self.rounds else 0
        done = Round(index, self.clock() - start, control, slices, evidence)
        self.rounds.append(done)
        self.judge.record(done.index, control)
        if self.on_round is not None:
            self.on_round(done)
        return done

    def _slice(self, key: Hashable, timer) -> list[float]:
        first = key not in self.warm
        self.warm.add(key)
        s = self.settings
        return timer(s.slice_s, s.first_warmup_iters if first else s.warmup_iters, s.warmup_s)

    # ------------------------------------------------------------------ judging
    def quiet(self, key: Hashable) -> list[Round]:
        return [r for r in self.rounds if key in r.slices and not self.judge.contended(r.index)]

    def contended_seconds(self) -> float:
        return sum(r.seconds for r in self.rounds if self.judge.contended(r.index))

    def measured(self, key: Hashable) -> bool:
        """Enough quiet rounds and samples, and the CI target met (or the time cap reached)."""
        s = self.settings
        quiet = self.quiet(key)
        samples = [x for r in quiet for x in r.slices[key]]
        if len(quiet) < s.min_rounds:
            return False
        if len(quiet) * s.slice_s >= s.max_time_s:
            return True
        if len(samples) < s.min_iters:
            return False
        return not s.target_ci or ci_relative_halfwidth(samples) <= s.target_ci

    def pooled(self, key: Hashable) -> Pooled:
        timed = [r for r in self.rounds if key in r.slices]
        quiet = self.quiet(key)
        discarded = len(timed) - len(quiet)
        pool = quiet or timed                 # nothing quiet: the figure stays, marked contended
        samples = tuple(x for r in pool for x in r.slices[key])
        seconds = sum(r.seconds * len(r.slices[key]) / max(1, sum(map(len, r.slices.values()))) for r in pool)
        reason = ""
        if len(quiet) < self.settings.min_rounds:
            worst = max((self.judge.ratio(r.index) or 0.0) for r in timed) if timed else 0.0
            reason = (f"{len(quiet)} of {len(timed)} rounds quiet (needed {self.settings.min_rounds}; the control "
                      f"ran up to {100 * (worst - 1):.0f}% slower than its best)")
        throughout = busy_throughout([r.evidence for r in pool])
        if throughout is not None:
            share = float(throughout.get("other_share") or 0)
            busy = f"{BUSY_THROUGHOUT} {share:.0%} of the machine or more in every round"
            reason = f"{reason}; {busy}" if reason else busy
        evidence = max((r.evidence for r in pool if r.evidence), default=None,
                       key=lambda e: float(e.get("other_share") or 0.0))
        return Pooled(samples, len(quiet), discarded, bool(reason), reason, seconds, evidence)


def pooled_stats(pooled: Pooled, batch: int, timing_method: str) -> LatencyStats:
    """LatencyStats of a network's pooled samples, saying how they were obtained (``rounds``) and
    what /proc saw meanwhile (``contention``)."""
    stop = f"{pooled.kept} quiet round(s) pooled, {pooled.discarded} contended set aside"
    stats = latency_stats(pooled.samples, batch=batch, total_s=pooled.seconds, timing_method=timing_method,
                      stop_reason=stop)
    return replace(stats, contention=pooled.evidence, rounds=pooled.provenance())


def _median(samples: list[float]) -> float:
    xs = sorted(samples)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])
