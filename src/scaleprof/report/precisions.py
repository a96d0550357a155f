"""Precisions compared at equal configuration: the speedup of each precision over fp32 for the same
network, shape and target, the activation bytes each moves, and whether latency follows the same
metric in each precision ("does runtime still follow activations in int8 here?").

A pair is two measured points that differ only in precision (target, model, strategy, alpha, s,
resolution and batch equal). The speedup of a precision on a target and batch is the geometric mean
of fp32 ms / its ms over its pairs. The metric ranking per precision is the analysis' own: a target
swept at several precisions is analysed as one group per precision (report.analysis.group_of).
Activation bytes are acts x batch x the precision's bytes per element (an int8 activation is one
byte, an fp32 one four); pooled over a target's precisions, the correlation of latency with bytes
against with elements says whether the bytes a precision saves show up in its latency.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from scaleprof.report.analysis import POOLED, Analysis, strategy_label
from scaleprof.report.blocks import Section, Table, fmt, point_label
from scaleprof.report.fits import pearson_r
from scaleprof.report.tables import activation_bytes
from scaleprof.sweep.result import PointResult

BASE = "fp32"


@dataclass(frozen=True)
class PrecisionPair:
    base: PointResult               # the fp32 point
    other: PointResult              # the same configuration at another precision

    @property
    def speedup(self) -> float:
        return self.base.latency_ms / self.other.latency_ms


def _configuration(point: PointResult) -> tuple:
    return (point.target, point.model, strategy_label(point), float(point.scale), point.resolution, point.batch)


def precision_pairs(rows: list[PointResult]) -> list[PrecisionPair]:
    """Every measured non-fp32 point with its fp32 twin, in configuration order."""
    by_config: dict[tuple, dict[str, PointResult]] = defaultdict(dict)
    for row in rows:
        if row.latency_ms:
            by_config[_configuration(row)][row.precision_label] = row
    return [PrecisionPair(points[BASE], point) for _, points in sorted(by_config.items(), key=lambda kv: str(kv[0]))
            if BASE in points for precision, point in sorted(points.items()) if precision != BASE]


def mean_speedups(pairs: list[PrecisionPair]) -> dict[tuple, tuple[float, float, float, int]]:
    """(target, precision, batch) -> (geometric mean speedup, lowest, highest, pairs)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for pair in pairs:
        groups[(pair.other.target, pair.other.precision_label, pair.other.batch)].append(pair.speedup)
    return {key: (math.exp(sum(map(math.log, s)) / len(s)), min(s), max(s), len(s))
            for key, s in sorted(groups.items())}


def verdicts(analysis: Analysis) -> list[str]:
    """Per target, precision and batch with fp32 twins: the speedup and, when both precisions have a
    ranking, whether latency follows the same metric as in fp32."""
    out = []
    pairs = precision_pairs(analysis.rows)
    for (target, precision, batch), (mean, low, high, n) in mean_speedups(pairs).items():
        pace = f"{mean:.2f}x as fast as" if mean >= 1 else f"{1 / mean:.2f}x slower than"
        text = (f"On {target} at batch {batch}, {precision} runs {pace} {BASE} (speedup {mean:.2f}x, geometric "
                f"mean over {n} network(s), {low:.2f}x to {high:.2f}x).")
        base, other = (analysis.best_metric((f"{target}/{p}", batch)) for p in (BASE, precision))
        if base is not None and other is not None:
            fp32 = f"as in {BASE}" if other.metric == base.metric else f"in {BASE} {base.metric}"
            text += (f" In {precision} latency follows {other.metric} best (r={other.r:.3f}), {fp32} "
                     f"(r={base.r:.3f}){_acts(analysis, target, batch, precision)}.")
        out.append(text)
    return out


def _acts(analysis: Analysis, target: str, batch: int, precision: str) -> str:
    """'; activations: r=... in fp32, r=... in int8' (empty when either is unknown)."""
    rs = [analysis.fits.get((f"{target}/{p}", batch), {}).get("acts") for p in (BASE, precision)]
    if any(m is None or m.r is None for m in rs):
        return ""
    return f"; activations: r={rs[0].r:.3f} in {BASE}, r={rs[1].r:.3f} in {precision}"


def _bytes_against_elements(rows: list[PointResult]) -> list[list]:
    """Per target and batch measured at several precisions: r of latency with activation bytes and
    with activation elements, every precision pooled."""
    slices: dict[tuple, list[PointResult]] = defaultdict(list)
    for row in rows:
        if row.latency_ms and row.acts is not None:
            slices[(row.target, row.batch)].append(row)
    out = []
    for (target, batch), members in sorted(slices.items()):
        precisions = sorted({r.precision_label for r in members})
        if len(precisions) < 2:
            continue
        y = [r.latency_ms for r in members]
        out.append([target, batch, "/".join(precisions), fmt(pearson_r([activation_bytes(r) for r in members], y)),
                    fmt(pearson_r([r.metric("acts") for r in members], y)), len(members)])
    return out


def sections(analysis: Analysis) -> list[Section]:
    """The "Precisions at equal configuration" section, or none when no point has an fp32 twin."""
    pairs = precision_pairs(analysis.rows)
    if not pairs:
        return []
    section = Section("Precisions at equal configuration", anchor="precisions")
    section.blocks.append(
        "Each precision against fp32 for the same network, shape and target: speedup is fp32 ms / its ms; "
        "activation bytes are acts x batch x bytes per element (fp32 4, fp16 2, int8 and fp8 1). "
        "An int8 or fp8 engine runs a QDQ file: which layers really run quantized is in its manifest "
        "(`scaleprof inspect ENGINE`).")
    section.blocks += verdicts(analysis)
    table = Table(["target", "network", "precision", "fp32 ms", "ms", "speedup", "fp32 act MB", "act MB"], [])
    for pair in pairs:
        base, other = pair.base, pair.other
        table.rows.append([other.target, point_label(other), other.precision_label, fmt(base.latency_ms),
                           fmt(other.latency_ms), fmt(pair.speedup), _mb(activation_bytes(base)),
                           _mb(activation_bytes(other))])
    section.blocks.append(table)
    ranking = Table(["target", "batch", "precision", "metric ranking (Pearson r)"], [])
    for (group, batch), ranked in analysis.ranking.items():
        if batch == POOLED or "/" not in group:
            continue
        target, _, precision = group.partition("/")
        ranking.rows.append([target, batch, precision.split(" ")[0],
                             ", ".join(f"{m.metric} {m.r:.3f}" for m in ranked if m.r is not None)])
    if ranking.rows:
        section.blocks.append(ranking)
    pooled = _bytes_against_elements(analysis.rows)
    if pooled:
        section.blocks.append(Table(["target", "batch", "precisions", "r latency~act bytes", "r latency~acts",
                                     "n"], pooled,
                                    caption="every precision pooled: do the bytes a precision saves show in latency?"))
    return [section]


def _mb(value: int | None) -> str:
    return fmt(value / 1e6 if value is not None else None)
