"""profile stage: end-to-end latency (time_engine), the environment it was measured in
(capture_environment), layer-by-layer times mapped to ONNX nodes and counts (profile_layers),
and the device roofline (device_peaks).

    stats = time_engine(engine, ShapePoint(1, 224), TimingSettings(target_ci=0.01))
    report = profile_layers(engine, ShapePoint(1, 224), count_onnx(onnx_path), stats.median,
                            iterations=20, peaks=device_peaks("cpu", cache_dir=out / "cache"))
"""

from scaleprof.profile.environment import capture_environment, environment_for
from scaleprof.profile.layers import build_report, node_counts, profile_layers
from scaleprof.profile.mapping import OnnxGraph, OrtResolver, Resolver, make_resolver, register_resolver
from scaleprof.profile.roofline import DevicePeaks, device_peaks
from scaleprof.profile.stats import StoppingRule, median_ci, median_ci_ranks, summarise
from scaleprof.profile.timing import time_engine, time_runner, validate_settings
from scaleprof.profile.types import (Environment, LatencyStats, LayerReport, LayerRow, Measurement,
                                     TimingSettings)

__all__ = ["capture_environment", "environment_for", "build_report", "node_counts", "profile_layers",
           "OnnxGraph", "OrtResolver", "Resolver", "make_resolver", "register_resolver", "DevicePeaks",
           "device_peaks", "StoppingRule", "median_ci", "median_ci_ranks", "summarise", "time_engine",
           "time_runner", "validate_settings", "Environment", "LatencyStats", "LayerReport", "LayerRow",
           "Measurement", "TimingSettings"]
