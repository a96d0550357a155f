"""Stages that need no runtime: counts grow as docs/conventions.md#growth-exponents says, latency = a * acts + b,
and a measurement takes ``delay`` seconds. Also a script: ``python fake_stages.py CONFIG OUT [--delay S]
[--jobs N] [--ray ADDRESS]`` runs a sweep with them (the SIGKILL and concurrency tests run it as a real process)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from scaleprof.errors import EnvironmentProblem
from scaleprof.profile.types import LatencyStats, LayerReport, LayerRow
from scaleprof.report.analysis import expected_exponents
from scaleprof.sweep.stages import Stages
from scaleprof.sweep.store import Store

# The grid the runner and executor tests sweep with these stages.
GRID = """
name: fake
models: [efficientnet_b0]
strategies: [d, w, r, dwr, dWr]
scales: [1, 2, 4]
batch_sizes: [1, 2]
targets: [cpu-ort]
"""
BASE = {"flops": 390_000_000, "params": 5_300_000, "acts": 6_700_000}


@dataclass(frozen=True)
class FakeSpec:
    model: str
    strategy: str | None
    alpha: float | None
    scale: float
    resolution: int = 224
    flops_ratio: float = 1.0

    @property
    def key(self) -> str:
        scaled = self.scale != 1
        what = json.dumps([self.model, self.strategy if scaled else None, self.alpha if scaled else None, self.scale])
        return hashlib.sha256(what.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"model": self.model, "strategy": self.strategy, "alpha": self.alpha, "scale": self.scale,
                "resolution": self.resolution, "flops_ratio": self.flops_ratio}


@dataclass(frozen=True)
class FakeCounts:
    flops: int
    params: int
    acts: int


@dataclass
class FakeStages(Stages):
    delay: float = 0.0
    fail_strategies: tuple = ()
    missing_backends: tuple = ()
    fail_roofline: bool = False
    calls: dict = field(default_factory=lambda: {"export": 0, "build": 0, "time": 0, "layers": 0})
    exported: list = field(default_factory=list)      # (spec key, precision, flavour) of each export


    def environment(self, target):
        if target.backend in self.missing_backends:
            raise EnvironmentProblem(f"target {target.name!r}: backend {target.backend!r} needs a package: "
                                     "pip install it")
        env = {"backend": target.backend, "backend_version": "0", "device": target.device,
               "device_name": "Fake CPU", "threads": target.threads, "host": "test", "versions": {}, "clocks": {}}
        return "fakeenv" + target.backend, env

    def spec(self, point):
        r = 224
        if point.strategy == "r":
            r = int(round(224 * point.scale ** 0.5 / 8) * 8)
        return FakeSpec(point.model, point.strategy, point.alpha, point.scale, r, point.scale)

    def count(self, spec, resolution):
        e = expected_exponents(spec.strategy or "d", spec.alpha) if spec.strategy not in (None, "none") else \
            {"flops": 1, "params": 1, "acts": 1}
        factor = (resolution / spec.resolution) ** 2
        return FakeCounts(int(BASE["flops"] * spec.scale ** e["flops"] * factor),
                          int(BASE["params"] * spec.scale ** e["params"]),
                          int(BASE["acts"] * spec.scale ** e["acts"] * factor))

    def export(self, spec, precision, flavour, cache_dir):
        self.calls["export"] += 1
        if spec.strategy in self.fail_strategies:
            raise RuntimeError(f"cannot export <{spec.strategy}> & friends")
        self.exported.append((spec.key, precision, flavour))
        return Path(cache_dir) / f"{spec.key}-{precision}{flavour}.onnx"

    def build(self, onnx_path, spec, target, precision, shapes, cache_dir):
        self.calls["build"] += 1
        return {"spec": spec}, "engine-" + spec.key, False

    def median_ms(self, engine, batch, resolution) -> float:
        return 1.5 * self.count(engine["spec"], resolution).acts * batch / 1e6 + 2.0

    def time(self, engine, batch, resolution, timing):
        self.calls["time"] += 1
        time.sleep(self.delay)
        median = self.median_ms(engine, batch, resolution)
        return LatencyStats(median=median, mean=median, min=median, max=median, p90=median, p99=median, std=0.0,
                            cv=0.0, ci95=(median, median), iterations=10, total_s=self.delay, batch=batch,
                            timing_method="fake")

    def device_peaks(self, engine):
        if self.fail_roofline:
            raise RuntimeError("no peaks on this fake device")
        return None

    def layers(self, engine, spec, batch, resolution, timing, latency, inputs=None):
        self.calls["layers"] += 1
        layers = tuple(LayerRow(name=f"layer{i}", onnx_nodes=(f"/n{i}/Conv",), op_type="Conv", category="conv",
                                time_ms=latency.median / 4, mean_ms=latency.median / 4, flops=1000 * (i + 1),
                                params=10, acts=100 * (i + 1)) for i in range(4))
        return LayerReport(layers=layers, layer_sum_ms=latency.median, end_to_end_ms=latency.median, coverage=1.0,
                           profiler="fake", iterations=1)


VOLATILE = ("row_id", "stage_seconds")


def stored(out) -> list:
    """Every stored point with its layers, without what differs between two runs of one grid."""
    with Store(out, create=False) as store:
        rows = store.points(status=None, with_layers=True)
    return sorted((replace(r, **{k: None for k in VOLATILE}) for r in rows), key=lambda r: (r.target, r.point_key))


@dataclass
class RoundStages(FakeStages):
    """FakeStages whose sweeps time in interleaved rounds: an inference sleeps ``inference_s`` and
    returns the fake latency, three times it during the runner calls in ``slow_calls`` ((first, last)
    call numbers: a scripted neighbour)."""

    inference_s: float = 0.0003
    slow_calls: tuple = ()
    broken_scales: tuple = ()                        # the runners of these networks raise
    inferences: int = 0
    loaded: dict = field(default_factory=dict)       # spec key -> times loaded (runner asked for)

    def runner(self, engine, batch, resolution):
        key = engine["spec"].key
        self.loaded[key] = self.loaded.get(key, 0) + 1
        ms = self.median_ms(engine, batch, resolution)

        def run() -> float:
            if engine["spec"].scale in self.broken_scales:
                raise RuntimeError(f"runner of x{engine['spec'].scale:g} broke")
            self.inferences += 1
            time.sleep(self.inference_s)
            slow = any(a <= self.inferences <= b for a, b in self.slow_calls)
            return ms * (3.0 if slow else 1.0)
        return run


ROUND_TIMING = """
timing: {min_iters: 5, min_time_s: 0.06, rounds: 3, target_ci: 0.5, max_time_s: 0.5, warmup_iters: 1}
"""


def main(argv=None) -> int:
    from scaleprof.errors import ScaleprofError
    from scaleprof.sweep.config_file import load_config
    from scaleprof.sweep.runner import run_sweep

    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--ray", help="a Ray cluster's address, or auto")
    parser.add_argument("--rounds", type=float, metavar="INFERENCE_S",
                        help="time in interleaved rounds (RoundStages), each inference taking INFERENCE_S")
    args = parser.parse_args(argv)
    try:
        from scaleprof.sweep.executors import make_executor

        stages = FakeStages(delay=args.delay) if args.rounds is None else RoundStages(inference_s=args.rounds)
        result = run_sweep(load_config(args.config), args.out, stages=stages,
                           force=args.force, progress=False, executor=make_executor(args.jobs, args.ray))
    except ScaleprofError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(json.dumps({"measured": result.measured, "skipped": result.skipped, "failed": result.failed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
