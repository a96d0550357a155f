"""Kernel calibration: time generated kernels on the target (ONNX Runtime on this CPU), within a time
budget, and fit the kernel model to them.

Each generated graph (kernel_graphs) is optimised by ONNX Runtime exactly as a network would be and run
with its profiler on: every node of the optimised graph (the convolution, the reorders ORT put around
it, the ops it did not fuse) is one timed kernel with its features (onnx_kernels). The whole run's time
minus its kernels' gives the run's own cost per run and per kernel. Sampling is adaptive: at first in
proportion to how much of a CNN's time a generator's kernels take, then also to how wrong the kernel
model still is on them (its leave-one-out error).

Runs alternate cold (caches flushed, then the graph's inputs read again: a kernel's input was just
written by the kernel before it) and warm; a kernel's time is its warm time plus its cold penalty in
proportion to how much of the L2 cache it moves (kernels that move little keep their code and bytes
cached between alike neighbours in a network; those that move more meet weights and output cold). Every time kept is the minimum over a graph's timed runs: on a quiet machine within a few percent of
the median, on a loaded one the only statistic that other processes' time slices do not inflate.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from scaleprof.engines.backends import backend_for
from scaleprof.engines.ort import session_options
from scaleprof.engines.ort_profile import parse_profile
from scaleprof.errors import BadInput
from scaleprof.predict.kernel_graphs import GENERATORS
from scaleprof.predict.kernel_model import KernelModel, fit_kernels
from scaleprof.predict.onnx_kernels import Kernel, graph_kernels
from scaleprof.profile.environment import capture_environment
from scaleprof.sweep.config import PRESETS

DEFAULT_BUDGET_MIN = 8.0
REFIT_EVERY = 20
EXPLORE_SHARE = 0.4                  # of the budget sampled by importance alone
TIMED_SECONDS = (0.04, 0.4)          # per graph: at least / at most this long timing it (after two warm-ups)
MIN_RUNS = 6                         # three cold and three warm
FLUSH_MB = 64                        # more than this CPU's last-level cache slice (and most others')
RUN_EVERY = 2                        # graphs also timed whole without the profiler: one in RUN_EVERY


def target_definition(name: str) -> dict:
    """A target's definition (name, backend, device, threads, options): a preset, or cpu-ort-<N>t."""
    if name in PRESETS:
        return PRESETS[name].to_dict()
    match = re.fullmatch(r"cpu-ort-(\d+)t", name)
    if match and int(match.group(1)) > 0:
        return {"name": name, "backend": "ort", "device": "cpu", "threads": int(match.group(1)), "options": {}}
    known = ", ".join(sorted(PRESETS))
    raise BadInput(f"unknown target {name!r}: kernel calibration knows {known} and cpu-ort-<N>t (N threads)")


def ort_settings(config: dict) -> tuple[int | None, str]:
    """(threads, optimisation level) of an ONNX Runtime CPU target; BadInput for any other target."""
    if config.get("backend") != "ort" or config.get("device", "cpu") != "cpu":
        raise BadInput(f"target {config.get('name')!r} runs {config.get('backend')} on {config.get('device')}: "
                       "kernel calibration times ONNX Runtime's CPU kernels only (a cpu-ort target)")
    options = config.get("options") or {}
    level = str(options.get("opt_level") or options.get("graph_optimization_level") or "all")
    return config.get("threads"), level


def l2_cache_bytes() -> int:
    """The per-core L2 cache of this CPU (Linux sysfs), 1 MiB where it cannot be read."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip().upper()
        return int(text.rstrip("KMB")) * {"K": 2 ** 10, "M": 2 ** 20}.get(text[-1], 1)
    except (OSError, ValueError, IndexError):
        return 2 ** 20


class CacheFlush:
    """Writes a buffer larger than the CPU's caches: a kernel timed again and again otherwise finds its
    weights and maps in cache, which in a network (every kernel's weights in turn) it does not."""

    def __init__(self, megabytes: int = FLUSH_MB):
        import numpy as np

        self.buffer = np.empty(megabytes * 2 ** 20 // 8, dtype=np.float64)
        self.value = 0.0
        self.l2_bytes = l2_cache_bytes()

    def __call__(self) -> None:
        self.value += 1.0
        self.buffer.fill(self.value)


def _run_times(session, inputs: dict, rng, flush=None) -> list[float]:
    """Milliseconds per run: two warm-up runs, then at least MIN_RUNS and TIMED_SECONDS[0] seconds (the
    caches flushed before each run when ``flush`` is given; its time is not counted)."""
    binding = session.io_binding()
    arrays = [rng.standard_normal(shape).astype("float32") for shape in inputs.values()]
    for name, array in zip(inputs, arrays):
        binding.bind_cpu_input(name, array)
    for output in session.get_outputs():
        binding.bind_output(output.name)
    for _ in range(2):
        session.run_with_iobinding(binding)
    runs, start = [], time.perf_counter()
    while len(runs) < MIN_RUNS or time.perf_counter() - start < TIMED_SECONDS[0]:
        if flush is not None and len(runs) % 2 == 0:      # cold and warm runs in turn
            flush()
            for array in arrays:           # a kernel's input was just written by the kernel before it
                array.sum()
        t0 = time.perf_counter()
        session.run_with_iobinding(binding)
        runs.append(1e3 * (time.perf_counter() - t0))
        if time.perf_counter() - start > TIMED_SECONDS[1] and len(runs) >= 4:
            break
    return runs


def blended_ms(kernel, times: list, flush) -> float:
    """A kernel's time inside a network, from its cold (even) and warm (odd) runs: as warm as the caches
    would keep what it touches. A small kernel finds its code and its few bytes cached (the kernels
    around it are alike); one that moves more than the caches hold meets its weights and output cold."""
    if flush is None or len(times) < 2:
        return min(times)
    cold, warm = min(times[0::2]), min(times[1::2])
    share = min(1.0, (kernel.bytes_read + kernel.bytes_written) / (2 * flush.l2_bytes))
    return warm + max(cold - warm, 0.0) * share


def time_graph(model, inputs: dict, threads: int | None, level: str, seed: int = 0,
               with_run: bool = True, flush=None) -> tuple[list, tuple | None]:
    """Time one graph: its kernels with ONNX Runtime's profiler, [(Kernel, fastest ms)], and (with_run)
    its whole run without the profiler, (kernels, run ms, their profiled sum): the profiler adds its own
    cost to every kernel, and the run adds dispatch costs no kernel event holds."""
    import numpy as np
    import onnx
    import onnxruntime


    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="scaleprof-kcal-") as work:
        so = session_options(threads, level, profile_prefix=str(Path(work) / "profile"))
        so.optimized_model_filepath = str(Path(work) / "optimized.onnx")
        session = onnxruntime.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        count = len(_run_times(session, inputs, rng, flush))
        events = json.loads(Path(session.end_profiling()).read_text())
        optimized = onnx.load(so.optimized_model_filepath)
        run_ms = None
        if with_run:
            plain = onnxruntime.InferenceSession(so.optimized_model_filepath, session_options(threads, "disable"),
                                                 providers=["CPUExecutionProvider"])
            runs = _run_times(plain, inputs, rng, flush)
            run_ms = min(runs[1::2] if flush is not None else runs)
    by_name = {k.name: k for k in graph_kernels(optimized, inputs).kernels}
    timed = [(by_name[e.name], list(e.times_ms)) for e in parse_profile(events, count) if e.name in by_name]
    rows = [(k, blended_ms(k, times, flush)) for k, times in timed]
    warm = sum(min(times[1::2] if flush is not None and len(times) > 1 else times) for _, times in timed)
    executed = sum(1 for k, _ in rows if k.kind != "view")
    return rows, ((executed, run_ms, warm) if with_run else None)


@dataclass(frozen=True)
class KernelCalibration:
    """The kernel model of one target in one environment, with the timed kernels it was fitted to."""

    target: str
    env_key: str
    model: KernelModel
    environment: dict = field(default_factory=dict)
    target_config: dict = field(default_factory=dict)
    rows: tuple = ()                 # (Kernel, ms) timed
    runs: tuple = ()                 # (kernels, run ms, kernel sum ms) per timed graph
    graphs: int = 0
    seconds: float = 0.0
    created: float = 0.0
    source: str = "kernels"
    correction: object = None        # network_check.NetworkCorrection fitted on a zoo sweep, or None

    @property
    def device_name(self) -> str:
        return str(self.environment.get("device_name") or self.target_config.get("device") or "?")

    def with_rows(self, rows, runs=(), source: str = "") -> "KernelCalibration":
        """This calibration refitted with more timed kernels (a sweep's per-layer profiles)."""
        rows, runs = self.rows + tuple(rows), self.runs + tuple(runs)
        return replace(self, rows=rows, runs=runs, model=fit_kernels(rows, runs),
                       source=f"{self.source} + {source}" if source else self.source)

    def with_correction(self, correction) -> "KernelCalibration":
        return replace(self, correction=correction)


def _environment(config: dict) -> tuple[str, dict]:
    backend = backend_for("ort", "cpu")
    env = capture_environment(backend.name, backend.version(), "cpu", config.get("threads"),
                              backend.device_name("cpu"))
    return env.key, env.to_dict()


def _weights(generators: dict, produced: dict, model: KernelModel | None) -> tuple[list, list]:
    names = list(generators)
    weights = []
    for gen in names:
        errors = [model.keys[k].error for k in produced.get(gen, ()) if model and k in model.keys]
        uncertainty = statistics.mean(errors) if errors else 1.0
        weights.append(generators[gen] * (0.1 + uncertainty) if model else generators[gen])
    total = sum(weights)
    return names, [w / total for w in weights]


def calibrate_kernels(target: str, budget_min: float = DEFAULT_BUDGET_MIN, seed: int = 0,
                      progress=None) -> KernelCalibration:
    """Time generated kernels for ``budget_min`` minutes and fit the kernel model of ``target``."""
    import numpy as np


    if not 0 < budget_min <= 600 or not math.isfinite(budget_min):
        raise BadInput("--budget must be a positive number of minutes (at most 600)")
    config = target_definition(target)
    threads, level = ort_settings(config)
    env_key, environment = _environment(config)
    rng = np.random.default_rng(seed)
    flush = CacheFlush()
    rows, runs, produced, model, graphs = [], [], {}, None, 0
    start = time.perf_counter()
    budget_s = 60.0 * budget_min
    while time.perf_counter() - start < budget_s:
        names, p = _weights(GENERATORS, produced, model)
        gen = names[int(rng.choice(len(names), p=p))]
        label, graph, inputs = gen(rng)
        timed, run = time_graph(graph, inputs, threads, level, seed=graphs, with_run=graphs % RUN_EVERY == 0,
                                flush=flush)
        rows += timed
        runs += [run] if run else []
        graphs += 1
        produced.setdefault(gen, set()).update(k.key for k, _ in timed if k.kind not in ("view", "layout"))
        elapsed = time.perf_counter() - start
        if graphs % REFIT_EVERY == 0 and elapsed > EXPLORE_SHARE * budget_s:
            model = fit_kernels(rows, runs)
        if progress:
            progress(graphs, elapsed, budget_s, label)
    return KernelCalibration(target=target, env_key=env_key, model=fit_kernels(rows, runs), environment=environment,
                             target_config=config, rows=tuple(rows), runs=tuple(runs), graphs=graphs,
                             seconds=time.perf_counter() - start, created=time.time())


def kernel_from_dict(data: dict) -> Kernel:
    fields = {k: v for k, v in data.items() if k not in ("key", "intensity")}
    fields["fused"] = tuple(fields.get("fused") or ())
    return Kernel(**fields)
