"""End-to-end timing: warm-up, then timed single inferences until the stopping rule is met."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from pathlib import Path

from scaleprof.complexity.memory import MemoryEstimate, require_estimate
from scaleprof.complexity.memory import check_memory as check
from scaleprof.engines.shapes import check_accepts
from scaleprof.errors import BadInput
from scaleprof.profile.contention import ContentionWatch, wait_until_quiet
from scaleprof.profile.rounds import Interleaver, RoundSettings, SliceTimer, pooled_stats
from scaleprof.profile.stats import StoppingRule, latency_stats
from scaleprof.profile.types import LatencyStats, TimingSettings

PROGRESS_AFTER_S = 2.0   # runs expected to last longer than this show a progress bar
# What one timing may ask for: a point that needs more than an hour of timed iterations (or a million
# of them) measures nothing a shorter run would not, and a request for more is a typo or an attack.
MAX_SECONDS = 3600.0
MAX_ITERATIONS = 1_000_000
MAX_LAYER_ITERATIONS = 10_000       # each keeps a trace event per layer in memory
MAX_ROUNDS = 100                    # interleaved rounds of a sweep: each times every point once more


def validate_settings(settings: TimingSettings) -> None:
    """One-line BadInput for settings that cannot give a measurement, or would not end in time."""
    checks = (
        ("warm-up iterations", settings.warmup_iters, 0, MAX_ITERATIONS),
        ("warm-up time", settings.warmup_s, 0, MAX_SECONDS),
        ("minimum iterations", settings.min_iters, 1, MAX_ITERATIONS),
        ("minimum time", settings.min_time_s, 0, MAX_SECONDS),
        ("maximum time", settings.max_time_s, 1e-9, MAX_SECONDS),
        ("layer-profiling iterations", settings.layer_iters, 1, MAX_LAYER_ITERATIONS),
        ("wait for a quiet machine", settings.wait_quiet_s, 0, MAX_SECONDS),
        ("rounds", settings.rounds, 1, MAX_ROUNDS),
        ("control tolerance", settings.control_tolerance, 1e-9, math.inf),
        ("retry budget", settings.retry_budget_s, 0, MAX_SECONDS),
    )
    for what, value, least, most in checks:
        if value is None or isinstance(value, bool) or not math.isfinite(value) or value < least:
            need = "positive" if least > 0 else "zero or more"
            raise BadInput(f"{what} must be {need} and finite, got {value!r}")
        if value > most:
            unit = " s" if isinstance(most, float) else ""
            raise BadInput(f"{what} {value:g}{unit} is above the most one timing may take ({most:g}{unit}): "
                           "a longer run measures nothing a shorter one would not")
    if settings.target_ci is not None and not (0 <= settings.target_ci < 1):
        raise BadInput(f"target CI must be a fraction in [0, 1) (e.g. 0.01 for 1%), got {settings.target_ci!r}")
    if settings.min_time_s > settings.max_time_s:
        raise BadInput(f"minimum time {settings.min_time_s:g}s exceeds the maximum time {settings.max_time_s:g}s")


def time_runner(runner, settings: TimingSettings, batch: int, progress: bool | None = None,
                label: str = "timing", device: str = "cpu") -> LatencyStats:
    """Warm up, then call ``runner()`` (one inference, returns ms) until the stopping rule says stop.
    What other processes took on the machine (and on a CUDA ``device``'s GPU) while the timed
    iterations ran is recorded in ``contention``; with ``settings.wait_quiet_s``, timing first waits
    up to that long for the machine to be quiet."""
    validate_settings(settings)
    waited = wait_until_quiet(settings.wait_quiet_s) if settings.wait_quiet_s > 0 else None
    warm = _warm_up(runner, settings)
    rule = StoppingRule(settings.min_iters, settings.min_time_s, settings.target_ci, settings.max_time_s)
    samples: list[float] = []
    bar = _Bar(settings, label, progress)
    with ContentionWatch(device) as watch:
        start = time.perf_counter()
        try:
            while True:
                samples.append(float(runner()))
                elapsed = time.perf_counter() - start
                reason = rule.done(samples, elapsed)
                bar.update(elapsed, len(samples))
                if reason:
                    break
        finally:
            bar.close()
    stats = latency_stats(samples, batch=batch, total_s=elapsed, stop_reason=reason,
                      timing_method=getattr(runner, "timing_method", "perf_counter"))
    contention = watch.result
    if contention is not None and waited is not None:
        contention = replace(contention, waited_s=round(waited[1], 3), quiet_before=waited[0])
    return replace(stats, warmup_iters=warm, contention=contention.to_dict() if contention is not None else None)


def _warm_up(runner, settings: TimingSettings) -> int:
    """Untimed iterations: both the count and the time, but never more than a fifth of the cap (a
    slow model would otherwise spend minutes warming up). Returns how many ran."""
    warm_cap = max(settings.warmup_s, 0.2 * settings.max_time_s)
    start = time.perf_counter()
    warm = 0
    while warm < settings.warmup_iters or time.perf_counter() - start < settings.warmup_s:
        runner()
        warm += 1
        if time.perf_counter() - start >= warm_cap:
            break
    return warm


def check_memory(onnx_path, shape, precision: str = "fp32") -> None:
    """BadInput, before an engine is built or run, when one inference of the ONNX model at ``shape``
    needs more memory than this machine allows (weights, input and every intermediate tensor alive
    at once, from the graph's shapes; scaleprof.complexity.memory)."""
    check(require_estimate(onnx_path, shape.resolution), shape.batch, shape.resolution,
          f"running {Path(onnx_path).name} at {shape}")


def check_engine_memory(engine, shape) -> None:
    """check_memory for a built engine: from the estimate its manifest recorded, else from the ONNX
    file it was built from (or its own artifact, when that is an ONNX file). An engine that has
    neither is refused: what it would allocate cannot be bounded."""
    m = engine.manifest
    what = f"running engine {engine.directory.name} at {shape}"
    if "memory" in m.extras:
        return check(MemoryEstimate.from_dict(m.extras["memory"]), shape.batch, shape.resolution, what)
    for source in (Path(m.onnx_path), engine.artifact_path):
        if source.suffix.lower() == ".onnx" and source.is_file():
            return check(require_estimate(source, shape.resolution), shape.batch, shape.resolution, what)
    raise BadInput(f"engine {engine.directory} records no memory estimate and the ONNX file it was built from "
                   f"({m.onnx_path}) is gone, so what {shape} needs cannot be bounded; rebuild the engine")


def time_engine(engine, shape, settings: TimingSettings = TimingSettings(), progress: bool | None = None) -> LatencyStats:
    """End-to-end latency of ``engine`` at ``shape`` (a ShapePoint); the engine is loaded if needed.
    Inputs are made once by ``engine.runner(shape)``, outside the timed region."""
    validate_settings(settings)
    check_accepts(engine, shape)
    check_engine_memory(engine, shape)
    engine.load()
    runner = engine.runner(shape)
    return time_runner(runner, settings, shape.batch, progress, label=f"timing {shape}",
                       device=engine.manifest.device)


def time_engines(engines: list, settings: TimingSettings = TimingSettings()) -> list[LatencyStats]:
    """End-to-end latency of several (engine, shape) pairs, timed in interleaved rounds
    (scaleprof.profile.rounds) with the first as the control network: a slowdown falls on all of
    them alike, and rounds in which the control ran slow are set aside. Engines are loaded here."""
    validate_settings(settings)
    runners = []
    for engine, shape in engines:
        check_accepts(engine, shape)
        engine.load()
        runners.append(engine.runner(shape))
    device = engines[0][0].manifest.device
    interleaver = Interleaver({i: SliceTimer(r) for i, r in enumerate(runners)}, SliceTimer(runners[0]),
                              RoundSettings.from_timing(settings), watch=lambda: ContentionWatch(device))
    pooled = interleaver.run()
    if interleaver.failed:
        raise next(iter(interleaver.failed.values()))
    return [pooled_stats(pooled[i], shape.batch, getattr(runners[i], "timing_method", "perf_counter"))
            for i, (_, shape) in enumerate(engines)]


class _Bar:
    """A rich progress bar on stderr for runs expected to take a while (off when not a terminal)."""

    def __init__(self, settings: TimingSettings, label: str, enabled: bool | None):
        # with a CI target the run may go on to the cap; without one it stops at the minimum time
        self.expected = settings.max_time_s if settings.target_ci else settings.min_time_s
        if enabled is None:
            enabled = sys.stderr.isatty() and self.expected > PROGRESS_AFTER_S
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.fields[n]} it"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(label, total=self.expected, n=0)
            self._last = 0.0

    def update(self, elapsed: float, n: int) -> None:
        if self.progress is not None and elapsed - self._last > 0.1:
            self._last = elapsed
            self.progress.update(self.task, completed=min(elapsed, self.expected), n=n)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
