"""The report's main sections (summary, predictors, exponents, budgets, layers, batch x resolution,
contention, failures, environment), made of the format-free blocks of scaleprof.report.blocks:
html.py and markdown.py render the Document ``build`` returns.
"""

from __future__ import annotations

import math
from collections import defaultdict

from scaleprof.report import plots
from scaleprof.report.analysis import (POOLED, Analysis, category_times, grouped, slice_label, sliced, strategy_label,
                                       top_layers)
from scaleprof.report.blocks import Block, Document, Image, ImageNames, Section, Table, fmt, point_label
from scaleprof.report.fits import layer_predictions
from scaleprof.sweep.result import PointResult

NOISY_CV = 0.10             # above this a point's timing is called noisy in the summary


def build(analysis: Analysis, failures: list[PointResult], environments: list[dict], sweeps: list[dict],
          with_plots: bool = True, more: list[Section] = ()) -> Document:
    """The report of ``analysis``; ``more`` (the prediction sections) goes before the environment."""
    images = ImageNames() if with_plots else None
    groups = grouped(analysis.rows)
    names = sorted({s["name"] for s in sweeps}) or ["(no sweep)"]
    sections = [_summary(analysis, grouped(analysis.measured), failures, sweeps), _predictors(analysis, images),
                _exponents(analysis, groups, images), _budget(analysis), _layers(grouped(analysis.measured), images),
                _batch_resolution(analysis.measured)]
    if analysis.contended:
        sections.append(_contention(analysis.contended))
    if failures:
        sections.append(_failures(failures))
    sections += more
    sections.append(_environment(environments))
    return Document(title=f"scaleprof report: {', '.join(names)}", sections=sections)


def _summary(analysis: Analysis, groups: dict, failures: list[PointResult], sweeps: list[dict]) -> Section:
    rows = analysis.measured
    summary = Section("Summary", anchor="summary")
    summary.blocks.append(
        f"{len(rows)} measured points on {len(groups)} target(s) ({', '.join(groups) or 'none'}); "
        f"{len(failures)} failed point(s). Latency is the median milliseconds per batch; "
        "throughput is images per second at that median.")
    summary.blocks.append(f"Counting convention: {convention(sweeps)}. Latency is compared with the work of a "
                          "whole batch (flops and acts x batch; params and layers, the layers executed per "
                          "inference, once). Verdicts are per target and batch size.")
    for verdict in analysis.verdicts().values():
        summary.blocks.append(verdict)
    summary.blocks += _how_measured(rows)
    unfaithful = analysis.unfaithful()
    if unfaithful:
        summary.blocks.append(unfaithful)
    cvs = sorted(float(r.latency.cv or 0.0) for r in rows)
    if cvs:
        median_cv = cvs[len(cvs) // 2]
        noisy = sum(1 for cv in cvs if cv > NOISY_CV)
        summary.blocks.append(
            f"Timing noise: median coefficient of variation {100 * median_cv:.1f}% over the points"
            + (f"; {noisy} point(s) above {100 * NOISY_CV:.0f}% (a busy machine: re-measure them with "
               "`scaleprof sweep CONFIG --force` when it is idle)." if noisy else "."))
    return summary


def _predictors(analysis: Analysis, images: ImageNames | None) -> Section:
    pred = _section("Which metric predicts latency", "predictors",
                    "Per target and batch size, latency fitted against each metric: linear (latency = a x metric "
                    "+ b) and log-log (latency = c x metric^k). r is Pearson's correlation (of the logs for "
                    "log-log); fit error is the mean relative error of the fitted latency. Metrics are ranked by "
                    "r; layers is the number of layers executed per inference (conv, linear, elementwise and "
                    "other operations), what launch-bound runs (batch 1 on a GPU) follow. Rows with batch "
                    "'pooled' put every batch size together: the batch size then explains most of the "
                    "variance and raises every r, so they are no verdict.")
    table = Table(["target", "batch", "rank", "metric", "r (linear)", "fit error (linear)", "ms per unit",
                   "r (log-log)", "exponent k", "fit error (log-log)", "n"], [])
    slices = sliced(analysis.rows)
    for (group, batch), ranked in analysis.ranking.items():
        members = slices[(group, batch)]
        known = [m for m in ranked if all(r.metric(m.metric) is not None for r in members)]
        for i, m in enumerate(known, 1):      # a metric not recorded (layers, older stores): no row
            lin, log = m.linear, m.loglog
            unit, unit_label = plots.UNITS[m.metric]
            table.rows.append([group, batch, i, m.metric, _r(m.r), _pct(lin.mape if lin else None),
                               f"{fmt(lin.slope * unit if lin else None)} ms / {unit_label}",
                               _r(m.r_log), fmt(log.slope if log else None), _pct(log.mape if log else None),
                               lin.n if lin else len(members)])
    pred.blocks.append(table)
    if images:
        pred.blocks += [images.image(f"fits-{slice_label(key)}",
                                     plots.metric_fits_plot(slice_label(key), members, analysis.fits[key]),
                                     f"{slice_label(key)}: latency against each metric with linear fits")
                        for key, members in slices.items() if key[1] != POOLED and len(members) >= 2]
    return pred


def _exponents(analysis: Analysis, groups: dict, images: ImageNames | None) -> Section:
    exp = _section("Growth exponents against s (measured)", "exponents",
                   "Log-log slope against the flops factor s of latency, flops, params, acts and layers "
                   "(executed per inference), per strategy (the table of Dollar et al. 2021, measured here; "
                   "expected values, exact before rounding, in brackets).")
    table = Table(["target", "model", "strategy", "batch", "resolution", "s", "latency", "flops", "params",
                   "acts", "layers"], [])
    for e in analysis.exponents:
        def cell(what):
            val = fmt(e.measured.get(what))
            if e.expected and what in e.expected:
                val += f" ({e.expected[what]:.3g})"
            return val
        table.rows.append([e.group, e.model, e.strategy, e.batch, e.resolution,
                           ", ".join(f"{s:g}" for s in e.scales), fmt(e.measured.get("latency")),
                           cell("flops"), cell("params"), cell("acts"), cell("layers")])
    if table.rows:
        exp.blocks.append(table)
    else:
        exp.blocks.append("Fewer than two scales per strategy: no exponents to fit.")
    if images:
        exp.blocks += _plot_per_group(
            images, groups, "scaling", lambda members: len({float(r.scale) for r in members}) >= 2,
            plots.scaling_plot, "{group}: log-log latency and activations against s per strategy")
    return exp


def _budget(analysis: Analysis) -> Section:
    bud = _section("Latency budget: the largest configuration that fits", "budget",
                   "For each budget, target and batch size: the highest-flops measured configuration whose "
                   "median latency is within the budget.")
    table = Table(["target", "batch", "budget (ms)", "largest that fits", "latency (ms)", "throughput (img/s)",
                   "GMACs", "fit / measured"], [])
    for p in analysis.budgets:
        r = p.row
        table.rows.append([p.group, p.batch, fmt(p.budget_ms), point_label(r) if r else "nothing fits",
                           fmt(r.latency_ms) if r else "-", fmt(r.throughput) if r else "-",
                           fmt(r.flops / 1e9) if r else "-", f"{p.fitting} / {p.total}"])
    bud.blocks.append(table if table.rows else "No measured points.")
    return bud


def _layers(groups: dict, images: ImageNames | None) -> Section:
    lay = _section("Per-layer breakdown", "layers",
                   "Layer times come from the backend's profiler in a run separate from the end-to-end "
                   "timing (profilers add synchronisation, so a profiled iteration takes longer than the end-to-end "
                   "median: their ratio is the overhead ratio; the layer sum adds the per-layer medians). Coverage "
                   "is the share of layer time mapped to ONNX nodes with counts.")
    for group, members in groups.items():
        with_layers = [r for r in members if r.layer_rows]
        if with_layers:
            lay.blocks += _group_layers(group, with_layers, images)
    if not any(r.layer_rows for members in groups.values() for r in members):
        lay.blocks.append("No per-layer profiles in this store (profile.layers was off).")
    return lay


def _group_layers(group: str, with_layers: list[PointResult], images: ImageNames | None) -> list[Block]:
    """One target's per-layer tables, the largest point's slowest layers and categories, and plots."""
    blocks: list = [Section(group, level=3)]
    table = Table(["point", "layers", "layer sum (ms)", "profiled iteration (ms)", "end-to-end (ms)",
                   "overhead ratio", "coverage", "profiler"], [])
    for r in with_layers:
        s = r.layers
        e2e = s.end_to_end_ms or r.latency_ms
        profiled = s.iteration_ms or s.layer_sum_ms
        ratio = profiled / e2e if profiled and e2e else None
        table.rows.append([point_label(r), len(s.layers), fmt(s.layer_sum_ms), fmt(s.iteration_ms),
                           fmt(e2e), fmt(ratio), _pct(s.coverage), s.profiler])
    blocks.append(table)
    largest = max(with_layers, key=lambda r: (r.flops * r.batch, r.latency_ms))
    largest_layers = largest.layer_rows
    title = f"{group}: slowest layers of {point_label(largest)}"
    total = sum(float(l.time_ms) for l in largest_layers) or 1.0
    top = Table(["layer", "ONNX nodes", "op", "category", "time (ms)", "share", "MMACs", "K acts"], [],
                caption=title)
    for l in top_layers(largest_layers, 12):
        nodes = l.onnx_nodes
        top.rows.append([l.name, ", ".join(nodes[:3]) + (f" (+{len(nodes) - 3})" if len(nodes) > 3 else ""),
                         l.op_type, l.category, fmt(float(l.time_ms)),
                         _pct(float(l.time_ms) / total), fmt(l.flops / 1e6), fmt(l.acts / 1e3)])
    blocks.append(top)
    cat_rows = Table(["point"] + list(category_times(largest_layers))[:8], [],
                     caption=f"{group}: time by op category (ms)")
    for r in with_layers:
        times = category_times(r.layer_rows)
        cat_rows.rows.append([point_label(r)] + [fmt(times.get(c, 0.0)) for c in cat_rows.headers[1:]])
    blocks.append(cat_rows)
    fits = layer_predictions(largest_layers)
    blocks.append(
        f"Measured against predicted, per layer of {point_label(largest)}: time vs flops r={_r(fits['flops'].r)} "
        f"(log-log r={_r(fits['flops'].r_log)}); time vs acts r={_r(fits['acts'].r)} "
        f"(log-log r={_r(fits['acts'].r_log)}).")
    if images:
        blocks.append(images.image(f"top-layers-{group}", plots.top_layers_plot(title, largest_layers), title))
        blocks.append(images.image(f"categories-{group}",
                                   plots.categories_plot(f"{group}: time by op category",
                                                         [(point_label(r), r.layer_rows) for r in with_layers]),
                                   f"{group}: time by op category per point"))
        blocks.append(images.image(f"layer-pred-{group}",
                                   plots.layer_prediction_plot(f"{group}: per-layer time vs prediction, "
                                                               f"{point_label(largest)}", largest_layers),
                                   f"{group}: measured layer time against predicted flops and acts"))
    return blocks


def _batch_resolution(rows: list[PointResult]) -> Section:
    grid = Section("Batch size x resolution", anchor="grid")
    specs = defaultdict(list)
    for r in rows:
        specs[(r.target, r.precision_label, r.model, strategy_label(r), float(r.scale))].append(r)
    multi = {k: v for k, v in specs.items() if len({(p.batch, p.resolution) for p in v}) > 1}
    if not multi:
        grid.blocks.append("Every configuration was measured at a single batch size and resolution; "
                           "the table below lists all points.")
    for (target, precision, model, strategy, scale), pts in sorted(multi.items()):
        batches = sorted({p.batch for p in pts})
        resolutions = sorted({p.resolution for p in pts})
        cell = {(p.batch, p.resolution): p for p in pts}
        for what, col, unit in (("latency", "latency_ms", "ms per batch"), ("throughput", "throughput", "img/s")):
            t = Table(["batch \\ resolution"] + [str(r) for r in resolutions], [],
                      caption=f"{target} {precision}: {model} {strategy} x{scale:g}, {what} ({unit})")
            for b in batches:
                t.rows.append([b] + [fmt(getattr(cell[(b, r)], col)) if (b, r) in cell else "-" for r in resolutions])
            grid.blocks.append(t)
    every = Table(["target", "precision", "model", "strategy", "s", "resolution", "batch", "GMACs", "M params",
                   "M acts", "layers", "latency (ms)", "95% CI (ms)", "CV", "throughput (img/s)",
                   "contended (how timed)"], [],
                  caption="All measured points")
    for r in sorted(rows, key=lambda r: (r.target, r.model, strategy_label(r), r.scale, r.batch)):
        ci = r.latency.ci95
        every.rows.append([r.target, r.precision_label, r.model, strategy_label(r), fmt(float(r.scale)),
                           r.resolution, r.batch, fmt(r.flops / 1e9), fmt(r.params / 1e6),
                           fmt(r.acts / 1e6), fmt(r.layer_count), fmt(r.latency_ms),
                           f"{fmt(ci[0])} - {fmt(ci[1])}" if ci else "-", _pct(r.latency.cv),
                           fmt(r.throughput), _contended(r.latency)])
    grid.blocks.append(every)
    return grid


def _how_measured(rows: list[PointResult]) -> list[str]:
    """The summary's lines on how the latencies were obtained: rounds kept and discarded, and the
    points left out of the verdicts."""
    out = []
    in_rounds = [r for r in rows if r.latency.rounds]
    if in_rounds:
        kept = sum(r.latency.rounds.get("kept", 0) for r in in_rounds)
        discarded = sum(r.latency.rounds.get("discarded", 0) for r in in_rounds)
        out.append(f"Timing: {len(in_rounds)} point(s) timed in interleaved rounds with a control network; over "
                   f"the points, {kept} slices from quiet rounds pooled and {discarded} from contended rounds (the "
                   "control ran slower than its best by more than the tolerance) set aside.")
    contended = [r for r in rows if r.contended]
    if contended:
        out.append(f"Contention: {len(contended)} of {len(rows)} point(s) could not be measured faithfully "
                   "(listed under 'Measured under contention'); the verdicts, fits, exponents, budgets and the "
                   "predictor's calibration leave them out. Re-time them with `scaleprof sweep CONFIG "
                   "--remeasure-noisy`.")
    return out


def _contended(latency) -> str:
    rounds = latency.rounds
    if rounds is not None:
        how = f"{rounds.get('kept', 0)} kept / {rounds.get('discarded', 0)} discarded rounds"
        return f"yes ({how})" if latency.contended else f"no ({how})"
    if not latency.contention:
        return "-"
    share = latency.contention.get("other_share", 0)
    return f"yes ({share:.0%} of the CPU)" if latency.contended else f"no (one run, {share:.0%} of the CPU)"


def _contention(contended: list[PointResult]) -> Section:
    """The points that could not be measured faithfully, with the evidence."""
    table = Table(["target", "point", "why", "rounds kept / discarded", "other processes (cores)",
                   "share of the CPU", "load", "GPU processes", "latency (ms)"], [])
    for r in sorted(contended, key=lambda r: (r.target, point_label(r))):
        c, rounds = r.contention or {}, r.latency.rounds
        table.rows.append([r.target, point_label(r), rounds.get("reason") if rounds else "timed in one run, flagged",
                           f"{rounds.get('kept', 0)} / {rounds.get('discarded', 0)}" if rounds else "-",
                           f"{c.get('other_cores', 0):.2f} of {c.get('cores', '?')}" if c else "-",
                           _pct(c.get("other_share")), fmt(c.get("load_end")),
                           len((c.get("gpu") or {}).get("other_processes") or ()), fmt(r.latency_ms)])
    return _section("Measured under contention", "contention",
                    "These points could not be measured faithfully: timed in rounds, too few of their rounds were "
                    "quiet (a control network, timed in every round, ran slower than its best) or other processes "
                    "kept the machine busy through every round; timed in one run, other processes took more than "
                    "the threshold share of the CPU or ran on the GPU. No verdict, fit or calibration uses them. "
                    "`scaleprof sweep CONFIG --remeasure-noisy` times them again; `--wait-quiet S` waits for a "
                    "quiet machine first.", table)


def _failures(failures: list[PointResult]) -> Section:
    return _section("Failed points", "failures",
                    "These points failed; the sweep went on. Re-running the sweep retries them.",
                    Table(["target", "point", "error"],
                          [[f.target, point_label(f), f.error or ""] for f in failures]))


def _environment(environments: list[dict]) -> Section:
    env = Section("Environment", anchor="environment")
    table = Table(["target", "backend", "version", "device", "device name", "threads", "host", "versions", "key"], [])
    for e in environments:
        d = e["environment"]
        versions = ", ".join(f"{k} {v}" for k, v in sorted((d.get("versions") or {}).items()))
        table.rows.append([e["target"].get("name"), d.get("backend"), d.get("backend_version"), d.get("device"),
                           d.get("device_name"), fmt(d.get("threads")), d.get("host"), versions, e["env_key"]])
    env.blocks.append(table if table.rows else "No environment recorded.")
    for e in environments:
        clocks = e["environment"].get("clocks") or {}
        if clocks:
            env.blocks.append(f"{e['target'].get('name')} clocks: "
                              + ", ".join(f"{k} {v}" for k, v in sorted(clocks.items())))
    return env


def convention(sweeps: list[dict]) -> str:
    """The counting convention the sweeps recorded (scaleprof.complexity.CONVENTION at sweep time)."""
    found = sorted({s["config"].get("convention") for s in sweeps if s["config"].get("convention")})
    return " | ".join(found) or "pycls (docs/conventions.md#counting)"


def _section(title: str, anchor: str, *blocks: Block) -> Section:
    return Section(title, blocks=list(blocks), anchor=anchor)


def _plot_per_group(images: ImageNames, groups: dict, name: str, wanted, plot, alt: str) -> list[Image]:
    """An image ``name-GROUP`` per target whose points are ``wanted(members)``, drawn by
    ``plot(group, members)``; ``alt`` names the target as {group}."""
    return [images.image(f"{name}-{group}", plot(group, members), alt.format(group=group))
            for group, members in groups.items() if wanted(members)]


def _r(value) -> str:
    """Correlations always with three decimals (0.999 and 1.000 differ)."""
    return "-" if value is None else f"{value:.3f}"


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * float(value):.1f}%"
