"""profile stage: end-to-end latency (time_engine), the environment it was measured in
(capture_environment), layer-by-layer times mapped to ONNX nodes and counts (profile_layers),
and the device roofline (device_peaks).

    stats = time_engine(engine, ShapePoint(1, 224), TimingSettings(target_ci=0.01))
    report = profile_layers(engine, ShapePoint(1, 224), count_onnx(onnx_path), stats.median,
                            iterations=20, peaks=device_peaks("cpu", cache_dir=out / "cache"))

Modules: timing (the timed loop; time_engines: several in interleaved rounds) and stats (median,
its confidence interval, the stopping rule); rounds (interleaved rounds of several networks) and
control (the control network that judges a round contended);
contention (what other processes took on the machine and its GPU while a point was timed, from the
kernel's accounting; waiting for a quiet machine);
environment (backend, device, versions, clocks; device names from scaleprof.engines.devices);
layers (profile_layers / build_report: one row per engine layer; trace_report for a trace measured
elsewhere, such as trtexec's), mapping (every exported node to
one layer, from the anchors the engine's own ``layer_resolver`` gives), categories (conv, SE,
activation, ...) and roofline (device peaks); types holds the results. The engine says how its
layers are named; nothing here knows a backend by name.
"""

from scaleprof.profile.environment import capture_environment, environment_for
from scaleprof.profile.categories import CATEGORIES, categorise
from scaleprof.profile.contention import Contention, ContentionWatch, wait_until_quiet
from scaleprof.profile.layers import build_report, engine_node_counts, node_counts, profile_layers, trace_report
from scaleprof.profile.mapping import assign
from scaleprof.profile.roofline import DevicePeaks, device_peaks, engine_peaks
from scaleprof.profile.stats import StoppingRule, median_ci, median_ci_ranks, latency_stats
from scaleprof.profile.timing import time_engine, time_runner, validate_settings
from scaleprof.profile.types import (Environment, LatencyStats, LayerReport, LayerRow, Measurement,
                                     TimingSettings)

__all__ = ["capture_environment", "environment_for", "build_report", "engine_node_counts", "node_counts",
           "profile_layers", "trace_report",
           "CATEGORIES", "categorise", "Contention", "ContentionWatch", "wait_until_quiet", "assign", "DevicePeaks",
           "device_peaks", "engine_peaks", "StoppingRule", "median_ci", "median_ci_ranks", "latency_stats", "time_engine",
           "time_runner", "validate_settings", "Environment", "LatencyStats", "LayerReport", "LayerRow",
           "Measurement", "TimingSettings"]
