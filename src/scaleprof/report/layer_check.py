"""The report's kernel-model section: for the points profiled per layer on a target that has a kernel
calibration of the same environment (`scaleprof calibrate --kernels`), the network's predicted against
measured latency and, per point, the most expensive layers' predicted against measured time. Nothing is
said when no such calibration exists. Each point is exported again at its shape (cached per user).
"""

from __future__ import annotations

from scaleprof.errors import ScaleprofError
from scaleprof.predict import find_kernels
from scaleprof.predict.network_check import point_check
from scaleprof.report.blocks import Section, Table, point_label

TOP_LAYERS = 5


def _calibration(target: str, env_key: str, found: dict):
    if target not in found:
        try:
            found[target] = find_kernels(target, required=False)
        except ScaleprofError:
            found[target] = None
    cal = found[target]
    return cal if cal is not None and cal.env_key == env_key else None


def sections(points) -> list[Section]:
    """The section (empty list when no profiled point has a kernel calibration of its environment)."""
    found, checks, notes = {}, [], []
    for p in points:
        if p.layers is None or not p.layers.layers or p.latency is None or not p.spec or not p.resolution:
            continue
        cal = _calibration(p.target, p.env_key, found)
        if cal is None:
            continue
        try:
            checks.append((p, cal, point_check(p, cal)))
        except ScaleprofError as err:
            notes.append(f"{point_label(p, with_target=True)}: {err}")
    if not checks:
        return []
    return [Section("Kernel model against the layer profiles", [_network_table(checks), _layer_table(checks)]
                    + notes, anchor="kernel-model")]


def _network_table(checks) -> Table:
    rows = []
    for p, cal, c in checks:
        corrected = cal.correction.apply(c.predicted_ms) if cal.correction else None
        rows.append([point_label(p, with_target=True), f"{c.measured_ms:.3g}", f"{c.predicted_ms:.3g}",
                     f"{100 * c.error:+.1f}%", "-" if corrected is None else f"{corrected:.3g}",
                     "-" if corrected is None else f"{100 * (corrected / c.measured_ms - 1):+.1f}%"])
    return Table(["point", "fastest run ms", "kernel model ms", "error", "with network correction ms", "error"],
                 rows, "Each point's fastest timed run (the statistic kernel timings use) beside the kernel model's prediction from its ONNX graph "
                 "(calibrate --kernels), before and after the network-level correction where one was fitted.")


def _layer_table(checks) -> Table:
    rows = []
    for p, _, c in checks:
        measured_total = sum(layer.measured_ms for layer in c.layers) or 1.0
        predicted_total = sum(layer.predicted_ms for layer in c.layers) or 1.0
        for layer in sorted(c.layers, key=lambda item: -item.measured_ms)[:TOP_LAYERS]:
            rows.append([point_label(p), layer.name[-40:], layer.op, f"{layer.measured_ms:.4f}",
                         f"{layer.predicted_ms:.4f}", f"{100 * (layer.predicted_ms / layer.measured_ms - 1):+.0f}%",
                         f"{100 * layer.measured_ms / measured_total:.1f}%",
                         f"{100 * layer.predicted_ms / predicted_total:.1f}%"])
    return Table(["point", "layer", "op", "measured ms", "predicted ms", "error", "measured share",
                  "predicted share"], rows,
                 f"The {TOP_LAYERS} most expensive profiled layers of each point, measured by ONNX Runtime's "
                 "profiler, against the kernel model's time and share of the profiled layers.")
