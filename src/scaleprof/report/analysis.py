"""What the measurements say: fits, correlations, growth exponents, rankings and budgets (the fits
themselves, linear and log-log with r: scaleprof.report.fits).

Works on the measured points as the results store returns them (``PointResult``: flops, params
and acts per image, pycls conventions; layer_count: layers executed per inference, None in stores
from before it was counted).

Latency is per batch, so it is compared with the batch's work: flops x batch and acts x batch
(params and the layers launched do not grow with the batch). Groups are targets (target/precision
when a target was swept at several precisions), split into "(detectors)" and "(classifiers)" when a
target measured both: a detector's latency may follow another metric than its classifier backbone's.

Dollar et al. 2021 show runtime on GPUs follows activations more closely than flops; this module
measures the same question on each target and batch size: Pearson r of latency against each metric,
linear and log-log, with the fit's error, and ranks the metrics by r. Verdicts are per batch size:
pooled over batch sizes, the batch size alone explains most of the variance and inflates every r, so
the pooled figures are kept (key batch "pooled") but never given as a verdict. At batch 1 on a GPU
latency follows how many layers run (kernel launches) more than their work: the layer count is a
metric of its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from scaleprof.errors import BadInput
from scaleprof.models import FAMILIES
from scaleprof.models.strategies import parse_strategy
from scaleprof.report.faithful import listing, no_verdict, too_few, unfaithful_line
from scaleprof.report.fits import MetricFits, fit_linear, fit_loglog
from scaleprof.sweep.result import METRIC_FIELDS, PointResult

METRICS = tuple(METRIC_FIELDS)              # flops, params, acts, layers
COUNTED = ("flops", "params", "acts")       # the metrics whose growth with s the conventions predict
POOLED = "pooled"                           # the batch of a slice that pools every batch size


# ------------------------------------------------------------------------------------ rows

TASK_GROUPS = {"detection": "detectors", "classification": "classifiers"}


def task_of(model: str) -> str:
    """"detection" or "classification": the task of the model's family (unknown names: classification)."""
    return next((f.task for f in FAMILIES.values() if model in f.bases), "classification")


def group_of(row: PointResult, multi_precision: set[str] = frozenset(), mixed_tasks: set[str] = frozenset()) -> str:
    """The analysis group of a point: its target, or target/precision when that target has several,
    followed by "(detectors)" or "(classifiers)" when the target measured both."""
    group = f"{row.target}/{row.precision_label}" if row.target in multi_precision else row.target
    return f"{group} ({TASK_GROUPS[task_of(row.model)]})" if row.target in mixed_tasks else group


def strategy_label(row: PointResult) -> str:
    alpha = row.alpha
    return f"{row.strategy}({alpha:g})" if alpha is not None and row.strategy == "dWr" else row.strategy


def grouped(rows: list[PointResult]) -> dict[str, list[PointResult]]:
    precisions, tasks = defaultdict(set), defaultdict(set)
    for row in rows:
        precisions[row.target].add(row.precision_label)
        tasks[row.target].add(task_of(row.model))
    multi = {t for t, p in precisions.items() if len(p) > 1}
    mixed = {t for t, k in tasks.items() if len(k) > 1}
    groups: dict[str, list[PointResult]] = defaultdict(list)
    for row in rows:
        if row.latency_ms:
            groups[group_of(row, multi, mixed)].append(row)
    return dict(sorted(groups.items()))


def sliced(rows: list[PointResult]) -> dict[tuple[str, int | str], list[PointResult]]:
    """(group, batch size) -> its points; with several batch sizes in a group, also (group, POOLED)
    -> all of them (after the batch sizes)."""
    out: dict[tuple[str, int | str], list[PointResult]] = {}
    for group, members in grouped(rows).items():
        batches = sorted({r.batch for r in members})
        for batch in batches:
            out[(group, batch)] = [r for r in members if r.batch == batch]
        if len(batches) > 1:
            out[(group, POOLED)] = members
    return out


def slice_label(key: tuple[str, int | str]) -> str:
    group, batch = key
    return f"{group}, every batch size pooled" if batch == POOLED else f"{group}, batch {batch}"


# ------------------------------------------------------------------------------------ analyses

def metric_fits(rows: list[PointResult]) -> dict[tuple, dict[str, MetricFits]]:
    """Per slice (sliced) and metric: the linear and log-log fits of latency (no fit for a metric some
    of the slice's rows lack)."""
    out = {}
    for key, members in sliced(rows).items():
        y = [r.latency_ms for r in members]
        out[key] = {}
        for metric in METRICS:
            x = [r.metric(metric) for r in members]
            known = None not in x
            out[key][metric] = MetricFits(slice_label(key), metric, fit_linear(x, y) if known else None,
                                          fit_loglog(x, y) if known else None)
    return out


def rank_metrics(fits: dict[tuple, dict[str, MetricFits]]) -> dict[tuple, list[MetricFits]]:
    """Per group, the metrics ordered from the best predictor of latency (highest Pearson r of the
    linear fit, then of the log-log fit) to the worst. Undefined r ranks last."""
    def key(m: MetricFits):
        return (-(m.r if m.r is not None else -2.0), -(m.r_log if m.r_log is not None else -2.0))
    return {group: sorted(by_metric.values(), key=key) for group, by_metric in fits.items()}


def expected_exponents(strategy: str, alpha: float | None = None) -> dict[str, float] | None:
    """Growth of flops, params and acts as powers of s, exact before rounding, from
    scaleprof.models.strategies (docs/conventions.md#growth-exponents); None for "none" or a name it does not know."""
    try:
        growth = parse_strategy(strategy, alpha if strategy == "dWr" else None).expected_growth
    except BadInput:
        return None
    return {k: growth[k] for k in COUNTED}


@dataclass
class Exponents:
    group: str
    model: str
    strategy: str             # label, with alpha for dWr
    batch: int
    resolution: str           # "auto" or the fixed resolution
    scales: tuple[float, ...]
    measured: dict[str, float | None]     # latency, flops, params, acts, layers: log-log slope vs s
    r: dict[str, float | None]
    expected: dict[str, float] | None


def growth_exponents(rows: list[PointResult]) -> list[Exponents]:
    """Per group, model, strategy, batch and resolution setting: the log-log slope against s of
    latency, flops, params, acts and layers (the paper's table, measured on this target; layers None
    where not counted)."""
    out = []
    for group, members in grouped(rows).items():
        series = defaultdict(list)
        for r in members:
            fixed = r.resolution_requested
            series[(r.model, strategy_label(r), r.strategy, r.alpha, r.batch,
                    "auto" if fixed in (None, "auto") else str(fixed))].append(r)
        ordered = sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][4], kv[0][5]))
        for (model, label, strategy, alpha, batch, res), pts in ordered:
            scales = sorted({float(p.scale) for p in pts})
            if len(scales) < 2:
                continue
            s = np.array([float(p.scale) for p in pts])
            measured, rs = {}, {}
            for what in ("latency", *METRICS):
                values = [p.latency_ms if what == "latency" else getattr(p, METRIC_FIELDS[what]) for p in pts]
                if None in values:
                    measured[what] = rs[what] = None
                    continue
                y = np.array(values, dtype=float)
                fit = fit_loglog(s, y)
                measured[what] = fit.slope if fit else None
                if fit and np.ptp(np.log(y)) == 0:       # a constant (params under r): slope 0, r undefined
                    measured[what] = 0.0
                rs[what] = fit.r if fit else None
            # a detector's en is the EfficientDet paper's table of networks, not a direction with exponents
            native = strategy == "en" and task_of(model) == "detection"
            out.append(Exponents(group, model, label, batch, res, tuple(scales), measured, rs,
                                 None if native else expected_exponents(strategy, alpha)))
    return out


@dataclass
class BudgetPick:
    group: str
    batch: int
    budget_ms: float
    row: PointResult | None   # the highest-flops point within the budget, None if none fits
    fitting: int              # how many points fit
    total: int


def within_budget(rows: list[PointResult], budget_ms: float) -> list[BudgetPick]:
    """For each group and batch size: the largest (highest-flops) configuration whose median
    latency is within ``budget_ms``; ties go to the faster one."""
    out = []
    for group, members in grouped(rows).items():
        by_batch = defaultdict(list)
        for r in members:
            by_batch[r.batch].append(r)
        for batch, pts in sorted(by_batch.items()):
            fit = [p for p in pts if p.latency_ms <= budget_ms]
            best = max(fit, key=lambda p: (p.metric("flops"), -p.latency_ms), default=None)
            out.append(BudgetPick(group, batch, budget_ms, best, len(fit), len(pts)))
    return out


def default_budgets(rows: list[PointResult]) -> list[float]:
    """Without a configured budget: the median measured latency (two significant digits), so the
    answer splits the sweep roughly in half."""
    lat = [r.latency_ms for r in rows if r.latency_ms]
    if not lat:
        return []
    m = float(np.median(lat))
    digits = -int(math.floor(math.log10(m))) + 1
    return [round(m, digits)]


# ------------------------------------------------------------------------------------ layers

def category_times(layers) -> dict[str, float]:
    """Per category, the summed time of a profile's LayerRows (ms)."""
    out = defaultdict(float)
    for layer in layers:
        out[layer.category or "other"] += float(layer.time_ms)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def top_layers(layers, n: int = 15) -> list:
    return sorted(layers, key=lambda l: -float(l.time_ms))[:n]


# ------------------------------------------------------------------------------------ all of it

@dataclass
class Analysis:
    """What the measurements say. ``rows`` are the points measured faithfully, the ones every fit,
    verdict, exponent and budget rests on; ``measured`` adds the contended ones (tables list them,
    marked; verdicts name them as left out)."""

    rows: list[PointResult]
    fits: dict[tuple, dict[str, MetricFits]]       # per slice: (group, batch or POOLED)
    ranking: dict[tuple, list[MetricFits]]
    exponents: list[Exponents]
    budgets: list[BudgetPick]
    budget_values: list[float] = field(default_factory=list)
    measured: list[PointResult] = field(default_factory=list)

    @property
    def contended(self) -> list[PointResult]:
        return [r for r in self.measured if r.contended]

    def best_metric(self, key: tuple) -> MetricFits | None:
        ranked = self.ranking.get(key) or []
        return ranked[0] if ranked and ranked[0].r is not None else None

    def verdicts(self) -> dict[tuple, str]:
        """One sentence per target and batch size (never for the pooled slices): which metric
        predicts latency best, with the r values."""
        out = {}
        slices = sliced(self.rows)
        for key, members in sliced(self.measured or self.rows).items():
            group, batch = key
            if batch == POOLED:
                continue
            left_out = [r for r in members if r.contended]
            n = len(slices.get(key, []))
            if left_out and too_few(n, len(members)):
                out[key] = no_verdict(group, batch, n, len(members), _labels(left_out))
                continue
            defined = [m for m in self.ranking.get(key, []) if m.r is not None]
            if not defined:
                out[key] = (f"On {group} at batch {batch}: not enough distinct points ({n}) to correlate "
                            "latency with a metric.")
                continue
            best = defined[0]
            others = ", ".join(f"{m.metric} r={m.r:.3f}" for m in defined[1:])
            log = f" (log-log r={best.r_log:.3f})" if best.r_log is not None else ""
            out[key] = (f"On {group} at batch {batch}, {best.metric} predicts latency best: Pearson "
                        f"r={best.r:.3f}{log}{'; ' + others if others else ''} (n={n} points).")
            if left_out:
                out[key] += (f" Verdict from {n} of {len(members)} points; {len(left_out)} contended: "
                             f"{_labels(left_out)}.")
        out.update(self.task_contrasts())
        return out

    def unfaithful(self) -> str | None:
        """One line when a neighbour stayed through the timing, or when no point could be measured
        faithfully (scaleprof.report.faithful); else None."""
        reasons = [(r.latency.rounds or {}).get("reason") or "" for r in self.contended]
        return unfaithful_line(len(self.measured), reasons)

    def task_contrasts(self) -> dict[tuple, str]:
        """Per target and batch size that measured detectors and classifiers: how their best
        predictors differ (keyed (target, batch, "tasks"))."""
        out = {}
        suffix = f" ({TASK_GROUPS['detection']})"
        for group, batch in self.ranking:
            if not group.endswith(suffix) or batch == POOLED:
                continue
            target = group[:-len(suffix)]
            detector = self.best_metric((group, batch))
            classifier = self.best_metric((f"{target} ({TASK_GROUPS['classification']})", batch))
            if detector is None or classifier is None:
                continue
            how = "as" if detector.metric == classifier.metric else "while"
            out[(target, batch, "tasks")] = (
                f"On {target} at batch {batch}, detector latency follows {detector.metric} best "
                f"(r={detector.r:.3f}), {how} the classifiers' alone follows {classifier.metric} best "
                f"(r={classifier.r:.3f}).")
        return out


def _labels(rows: list[PointResult]) -> str:
    return listing([f"{r.model} {strategy_label(r)} x{float(r.scale):g}" for r in rows])


def analyze(rows: list[PointResult], budgets: list[float] | None = None) -> Analysis:
    """Fits, verdicts, exponents and budgets from the points measured faithfully (contended ones,
    LatencyStats.contended, are left out of them and named)."""
    measured = [r for r in rows if r.latency_ms]
    rows = [r for r in measured if not r.contended]
    fits = metric_fits(rows)
    values = list(budgets) if budgets else default_budgets(rows)
    picks = [p for b in values for p in within_budget(rows, b)]
    return Analysis(rows, fits, rank_metrics(fits), growth_exponents(rows), picks, values, measured)
