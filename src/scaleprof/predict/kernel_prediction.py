"""A network's latency from its kernels: the sum of each kernel's predicted time plus the run's own
cost, with an interval, per-group times, per-kernel times and shares, and warnings for the kernels the
calibration does not cover (named, with their share of the network's work).

The interval assumes a network's kernel errors are correlated (a machine that is slower on one
convolution is slower on the next): its half-width is the time-weighted mean of the kernels' expected
errors, at least NOISE_FLOOR.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaleprof.errors import BadInput

NOISE_FLOOR = 0.03
FAR_WORTH_NAMING = 0.01          # share of the work: extrapolated kernels below it go unnamed (never-timed ones never)
GROUPS = ("conv", "depthwise conv", "grouped conv", "linear", "pooling", "global pooling", "elementwise",
          "normalization", "layout", "other", "run overhead", "network correction")


@dataclass(frozen=True)
class NetworkPrediction:
    latency_ms: float
    low_ms: float
    high_ms: float
    groups: dict                  # group -> ms
    estimates: tuple              # kernel_model.KernelEstimate per executed kernel, in order
    warnings: tuple = ()
    uncovered_share: float = 0.0  # of the network's work, on kernels no timed kernel covers
    uncorrected_ms: float | None = None   # the kernels' sum before the network-level correction, if one applied

    def per_layer(self) -> list[dict]:
        """Each executed kernel's features, predicted ms and share of the predicted latency."""
        total = self.latency_ms or 1.0
        return [{**e.kernel.to_dict(), "predicted_ms": e.ms, "share": e.ms / total, "covered": e.covered,
                 "far_from_calibration": e.far} for e in self.estimates if e.kernel.kind != "view"]

    def top(self, count: int = 5) -> list:
        return sorted((e for e in self.estimates if e.kernel.kind != "view"), key=lambda e: -e.ms)[:count]

    def to_dict(self, per_layer: bool = False) -> dict:
        data = {"latency_ms": self.latency_ms, "interval_ms": [self.low_ms, self.high_ms],
                "groups_ms": dict(self.groups), "warnings": list(self.warnings),
                "uncovered_work_share": self.uncovered_share, "uncorrected_ms": self.uncorrected_ms,
                "kernels": sum(1 for e in self.estimates if e.kernel.kind != "view")}
        if per_layer:
            data["per_layer"] = self.per_layer()
        return data


def _uncovered_warnings(estimates, total_work: float) -> tuple[list[str], float]:
    notes, share = [], 0.0
    by_key: dict[str, list] = {}
    for e in estimates:
        if not e.covered or e.far:
            by_key.setdefault((e.kernel.key, e.covered), []).append(e)
    for (key, covered), found in sorted(by_key.items(), key=lambda item: -sum(e.kernel.work for e in item[1])):
        part = sum(e.kernel.work for e in found) / total_work
        example = found[0].kernel
        shape = (f"{example.channels_in}->{example.channels_out} ch, {example.size_out} positions, "
                 f"k{example.kernel} s{example.stride} g{example.groups}")
        if covered and part >= FAR_WORTH_NAMING:
            notes.append(f"{len(found)} {key} kernel(s) ({100 * part:.1f}% of the work, e.g. {example.name}: "
                         f"{shape}) lie far from every timed one: extrapolated")
        elif not covered:
            share += part
            notes.append(f"{len(found)} {key} kernel(s) ({100 * part:.1f}% of the work, e.g. {example.name}) "
                         f"were never timed: estimated from another kernel kind")
    return notes, share


def predict_kernels(model, kernels, strict: bool = False, correction=None) -> NetworkPrediction:
    """The NetworkPrediction of a sequence of onnx_kernels.Kernel under a kernel_model.KernelModel, with
    a network_check.NetworkCorrection applied to the total when one is given."""
    estimates = tuple(model.estimate(k) for k in kernels)
    executed = [e for e in estimates if e.kernel.kind != "view"]
    if not executed:
        raise BadInput("the graph executes no kernel")
    groups = dict.fromkeys(GROUPS, 0.0)
    for e in executed:
        group = e.kernel.kind if e.kernel.kind in groups else "other"
        groups[group] += e.ms
    summed = sum(groups.values())
    overhead = max(model.overhead_ms(kernels), -0.5 * summed)
    groups["run overhead"] = overhead
    latency = sum(groups.values())
    total_work = sum(e.kernel.work for e in executed) or 1.0
    notes, uncovered = _uncovered_warnings(executed, total_work)
    if strict and uncovered > 0:
        first = next(note for note in notes if "never timed" in note)
        raise BadInput(f"--strict: {first}; calibrate again with a longer --budget, or drop --strict")
    spread = sum(e.ms * e.error for e in executed) / max(latency, 1e-9)
    band = max(spread, NOISE_FLOOR)
    uncorrected = None
    if correction is not None:
        uncorrected, latency = latency, correction.apply(latency)
        groups["network correction"] = latency - uncorrected
    return NetworkPrediction(latency, latency / (1 + band), latency * (1 + band),
                             {g: t for g, t in groups.items() if t}, estimates, tuple(notes), uncovered,
                             uncorrected)
