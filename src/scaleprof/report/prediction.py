"""The report's prediction sections (scaleprof.predict):

- predicted against measured: per target and batch, the latency model calibrated on a few of the
  store's networks predicts the others, next to the best single-metric fit on the same split;
- the best dWr alpha per latency budget, next to the paper's alpha = 0.8;
- targets side by side: the same configurations on each target (speedup, the metric that predicts
  latency best there, the strategy that is fastest at equal flops).

They appear when a target has enough distinct networks with full specs (MIN_NETWORKS). Counting a
configuration the store does not hold imports torch; counts are cached per user, so a report
written again reads them back.
"""

from __future__ import annotations

from collections import defaultdict

from scaleprof.errors import ScaleprofError
from scaleprof.predict import PAPER_ALPHA, best_alpha, calibrate, evaluate, sample_from_point
from scaleprof.predict.evaluate import SMALL_CALIBRATION, select_calibration
from scaleprof.predict.network_fit import fit_batch
from scaleprof.predict.samples import distinct
from scaleprof.report.analysis import POOLED
from scaleprof.report.blocks import Section, Table, fmt, point_label
from scaleprof.sweep.result import PointResult

MIN_NETWORKS = 6                     # distinct networks of one target and batch before anything is said
REPORT_ALPHAS = (0.2, 0.4, 0.6, 0.8, 1.0)
MAX_BUDGETS = 3


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _signed(value) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def _countable(point: PointResult) -> bool:
    spec = point.spec or {}
    return bool(spec.get("arch")) and bool(spec.get("family"))


def _samples(points: list[PointResult]) -> tuple[list, list[str]]:
    """Samples of the points with full specs; notes for what could not be read."""
    samples, notes = [], []
    for p in points:
        if not _countable(p):
            continue
        try:
            samples.append(sample_from_point(p))
        except ScaleprofError as err:
            notes.append(f"{point_label(p, with_target=True)}: {err}")
    return samples, notes


def _groups(samples) -> dict:
    groups = defaultdict(list)
    for s in samples:
        groups[(s.target, s.env_key, s.precision, s.batch)].append(s)
    return {k: v for k, v in sorted(groups.items()) if len(distinct(v)) >= MIN_NETWORKS}


def sections(analysis, environments: list[dict]) -> list[Section]:
    """The prediction sections for a store's analysis (empty when no target has enough networks)."""
    points = [r for r in analysis.rows if _countable(r)]
    out = []
    samples, notes = _samples(points) if points else ([], [])
    groups = _groups(samples)
    if groups:
        out.append(_held_out(groups, notes))
        alpha = _alphas(samples, groups, analysis.budget_values)
        if alpha is not None:
            out.append(alpha)
    side = _side_by_side(analysis)
    if side is not None:
        out.append(side)
    return out


def _held_out(groups: dict, notes: list[str]) -> Section:
    sec = Section("Predicted from counts, checked on held-out points", anchor="prediction")
    sec.blocks.append(
        "Per target and batch, a latency model of the network's structure (per op group: a fixed cost per "
        "layer, a cost per flop and per byte moved, summed, with an end-to-end correction; per-layer profiles "
        "fix the groups' rates where recorded) is calibrated on a few networks of this store and predicts the "
        "others from their counts alone. The best single-metric fit (latency against flops, params or acts, "
        "linear or log-log, whichever does best on the held-out points) is fitted to the same networks. "
        "`scaleprof calibrate DIR` saves the model; `scaleprof predict` and `scaleprof recommend` use it.")
    for (target, _env, precision, batch), members in groups.items():
        pool = distinct(members)
        k = min(SMALL_CALIBRATION, max(4, len(pool) // 2))
        train = select_calibration(pool, k)
        fitted = fit_batch(train)
        ev = evaluate(members)
        summary = Table(["split", "held out", "model within 10%", "within 20%", "median error", "worst",
                         "best single metric", "its within 10%", "its median error"], [],
                        caption=f"{target} {precision} batch {batch}: held-out accuracy ({len(pool)} networks)")
        for kind, scores in ev.to_dict()["splits"].items():
            m, b = scores["model"], scores["baseline"]
            summary.rows.append([kind, m["n"], _pct(m["within_10"]), _pct(m["within_20"]),
                                 _pct(m["median_abs_error"]), _signed(m["worst_error"]), b["method"] or "-",
                                 _pct(b["within_10"]), _pct(b["median_abs_error"])])
        sec.blocks.append(summary)
        chosen = {s.network for s in train}
        table = Table(["point", "calibration", "measured (ms)", "predicted (ms)", "interval (ms)", "error"], [],
                      caption=f"{target} {precision} batch {batch}: calibrated on {len(train)} networks "
                              f"({fitted.model.method}), the others predicted")
        for s in pool:
            ms, (low, high), flags = fitted.predict(s.features, s.batch, s.precision)
            table.rows.append([s.label, "yes" if s.network in chosen else "held out", fmt(s.latency_ms), fmt(ms),
                               f"{fmt(low)} - {fmt(high)}" + (" (extrapolation)" if flags else ""),
                               "-" if s.network in chosen else _signed(ms / s.latency_ms - 1)])
        sec.blocks.append(table)
    if notes:
        sec.blocks.append("Not used: " + "; ".join(notes[:5]) + (f" (and {len(notes) - 5} more)" if len(notes) > 5 else ""))
    return sec


def _alphas(samples, groups: dict, budgets: list[float]) -> Section | None:
    sec = Section("Best dWr alpha per latency budget (predicted)", anchor="alpha")
    sec.blocks.append(
        f"For each budget, the dWr scaling (alpha in {', '.join(f'{a:g}' for a in REPORT_ALPHAS)}, s up to 16) with "
        f"the most flops whose predicted interval lies within the budget, next to the paper's alpha = "
        f"{PAPER_ALPHA:g}. Flops stand for capacity, as in the scaling papers. Predictions past the calibrated "
        "range are marked (their intervals are wider).")
    table = Table(["target", "batch", "budget (ms)", "best alpha", "its s", "its GMACs", "predicted (ms)",
                   f"alpha {PAPER_ALPHA:g}: s", "GMACs", "predicted (ms)"], [])
    for (target, env, precision, batch), members in groups.items():
        cal = calibrate(samples, target, env, with_evaluation=False)
        model = max({s.model for s in members}, key=lambda m: sum(1 for s in members if s.model == m))
        for budget in list(budgets)[:MAX_BUDGETS]:
            try:
                best, paper = best_alpha(cal, model, budget, batch, REPORT_ALPHAS, precision)
            except ScaleprofError as err:
                table.rows.append([target, batch, fmt(budget), f"- ({err})"] + ["-"] * 6)
                continue
            table.rows.append([target, batch, fmt(budget)] + _alpha_cells(best, True) + _alpha_cells(paper, False))
    if not table.rows:
        return None
    sec.blocks.append(table)
    return sec


def _alpha_cells(cand, with_alpha: bool) -> list:
    if cand is None:
        return (["nothing fits"] if with_alpha else []) + ["-", "-", "-"]
    mark = " (extrapolation)" if cand.prediction.extrapolation else ""
    return ([fmt(cand.query.alpha)] if with_alpha else []) + [fmt(cand.query.scale), fmt(cand.flops / 1e9),
                                                              fmt(cand.prediction.latency_ms) + mark]


def _side_by_side(analysis) -> Section | None:
    """Configurations measured on two or more targets."""
    by_config = defaultdict(dict)
    for r in analysis.rows:
        key = (r.model, r.strategy, r.alpha, float(r.scale), r.resolution, r.batch, r.precision)
        by_config[key][r.target] = r
    targets = sorted({t for v in by_config.values() if len(v) > 1 for t in v})
    shared = {k: v for k, v in sorted(by_config.items(), key=lambda kv: tuple(map(str, kv[0]))) if len(v) > 1}
    if len(targets) < 2 or not shared:
        return None
    sec = Section("Targets side by side", anchor="targets")
    first = targets[0]
    sec.blocks.append(f"The same configurations on each target: median latency (ms) and the speedup over {first}.")
    table = Table(["configuration"] + [f"{t} (ms)" for t in targets] + [f"speedup vs {first}: {t}" for t in targets[1:]], [])
    for rows in shared.values():
        any_row = next(iter(rows.values()))
        lat = [rows[t].latency_ms if t in rows else None for t in targets]
        table.rows.append([point_label(any_row)] + [fmt(v) for v in lat]
                          + [fmt(lat[0] / v) if lat[0] and v else "-" for v in lat[1:]])
    sec.blocks.append(table)
    sec.blocks.append(_metric_table(analysis, targets))
    sec.blocks.append(_winners(analysis.rows, targets))
    return sec


def _metric_table(analysis, targets) -> Table:
    table = Table(["target", "batch", "best metric", "r", "then", "r"], [],
                  caption="Which metric predicts latency where (Pearson r, linear, from the fits above)")
    for (group, batch), ranked in analysis.ranking.items():      # per batch size; pooled is no verdict
        if batch == POOLED or group.split("/")[0] not in targets or not ranked:
            continue
        top = [m for m in ranked if m.r is not None]
        cells = [[m.metric, f"{m.r:.3f}"] for m in top[:2]] + [["-", "-"]] * (2 - len(top[:2]))
        table.rows.append([group, batch] + cells[0] + cells[1])
    return table


def _winners(rows: list[PointResult], targets) -> Table:
    """Per target, batch and s > 1: the fastest strategy (all strategies at s have about equal flops)."""
    table = Table(["target", "batch", "s", "fastest strategy", "latency (ms)", "slowest strategy", "latency (ms)"], [],
                  caption="Which strategy wins at equal flops")
    cells = defaultdict(list)
    for r in rows:
        if r.target in targets and float(r.scale) > 1:
            cells[(r.target, r.batch, float(r.scale), r.model)].append(r)
    for (target, batch, scale, _model), members in sorted(cells.items()):
        if len(members) < 2:
            continue
        fast = min(members, key=lambda r: r.latency_ms)
        slow = max(members, key=lambda r: r.latency_ms)
        table.rows.append([target, batch, fmt(scale), _strategy(fast), fmt(fast.latency_ms),
                           _strategy(slow), fmt(slow.latency_ms)])
    return table


def _strategy(row: PointResult) -> str:
    return f"dWr({row.alpha:g})" if row.alpha is not None else row.strategy
