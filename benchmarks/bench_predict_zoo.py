"""Zoo queries on an ONNX Runtime CPU target: the group model against the kernel model on the same points.
Prints figures; asserts nothing.

    python -m benchmarks.bench_predict_zoo --calibration KERNELS.json [--sweep DIR] [--target cpu-ort-1t]
                                           [--models efficientnet_b0 resnet18] [--work DIR]

Without --sweep it first sweeps MODELS under the strategies d, w, r and dWr at s = 1, 2, 3, 4, batch 1, on
the target, with per-layer profiles (a few minutes at one thread). On that sweep's uncontended points it
prints, against each network's measured median and its fastest run:

- the group model calibrated on the sweep, judged leave one strategy out (what `scaleprof calibrate`
  prints), beside the best single-metric fit on the same split;
- the kernel model of --calibration (a `scaleprof calibrate --kernels` file, which never saw these
  networks) predicting each point from its exported ONNX file;
- the kernel model with the network-level correction (offset + scale) fitted on the sweep's other
  networks: judged leave one network out, and leave one strategy out.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """name: zoo-strategies-{target}
models: [{models}]
strategies: [d, w, r, dWr]
alpha: 0.8
scales: [1, 2, 3, 4]
batch_sizes: [1]
resolutions: [auto]
precisions: [fp32]
targets:
  - {target_line}
timing:
  warmup_iters: 3
  warmup_s: 0.1
  min_iters: 10
  min_time_s: 0.6
  target_ci: 0.02
  max_time_s: 1.5
  layer_iters: 5
  layers: true
"""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (1 min) {five:.1f} (5 min), {os.cpu_count()} CPUs"


def sweep(target: str, models, out: Path) -> Path:
    from scaleprof.predict import target_definition
    from scaleprof.sweep.config_file import resolve_config
    from scaleprof.sweep.runner import run_sweep

    config = target_definition(target)
    line = "{" + ", ".join(f"{k}: {v}" for k, v in config.items() if k in ("name", "backend", "device", "threads")
                           and v is not None) + "}"
    path = out / "config.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG.format(target=target, models=", ".join(models), target_line=line))
    print(f"== sweep {', '.join(models)} (d/w/r/dWr, s = 1..4) on {target} into {out} [{load()}]")
    start = time.perf_counter()
    run_sweep(resolve_config(str(path)), out / "sweep", progress=False, log=lambda m: None)
    print(f"   swept in {(time.perf_counter() - start) / 60:.1f} min [{load()}]")
    return out / "sweep"


@dataclasses.dataclass
class Row:
    sample: object              # predict.Sample (latency: the median)
    median_ms: float
    min_ms: float
    point: object               # the sweep's PointResult
    kernel_ms: float = 0.0


def rows_of(path, cal, include_contended: bool = False) -> list[Row]:
    """One Row per distinct network of the calibration's target and environment (uncontended ones only,
    unless ``include_contended``: on a shared machine every point may be; their quiet rounds still count)."""
    from scaleprof.predict.network_check import fastest_ms, usable_points
    from scaleprof.predict.samples import distinct, load_points, sample_from_point

    points, _, _ = load_points(path)
    usable = usable_points(points, cal)
    contended = sum(p.contended for p in usable)
    pairs = [(sample_from_point(p), p) for p in usable if include_contended or not p.contended]
    keep = {id(s) for s in distinct([s for s, _ in pairs])}
    rows = [Row(s, float(p.latency.median), fastest_ms(p.latency), p) for s, p in pairs if id(s) in keep]
    print(f"   {len(rows)} distinct networks measured ({contended} contended points "
          f"{'kept: figures from their quiet rounds only' if include_contended else 'left out'})")
    return rows


def kernel_predictions(rows, cal) -> None:
    from scaleprof.predict import ort_settings, predict_kernels
    from scaleprof.predict.sweep_kernels import point_graph

    threads, level = ort_settings(cal.target_config)
    print(f"== kernel model: each point exported again (static, cached) and predicted from its file [{load()}]")
    seconds = []
    for row in rows:
        graph = point_graph(row.point, threads, level)
        start = time.perf_counter()
        row.kernel_ms = predict_kernels(cal.model, graph.kernels).latency_ms
        seconds.append(time.perf_counter() - start)
    print(f"   kernel sums in {statistics.median(seconds) * 1e3:.0f} ms per network (median; after the graph read)")


def summary(errors) -> str:
    errors = list(errors)
    if not errors:
        return "(none)"
    within = sum(abs(e) <= 0.10 for e in errors) / len(errors)
    median = statistics.median(abs(e) for e in errors)
    return (f"{100 * within:3.0f}% within +-10%, median |error| {100 * median:4.1f}%, "
            f"signed median {100 * statistics.median(errors):+5.1f}%, worst {100 * max(errors, key=abs):+5.1f}% "
            f"(n={len(errors)})")


def group_model(rows, reference: str) -> tuple[dict, object]:
    """Label -> held-out error of the group model (leave one strategy out), and the best single-metric score."""
    from scaleprof.predict.evaluate import best_single_metric, leave_one_strategy_out, structural_score

    samples = [dataclasses.replace(r.sample, latency_ms=getattr(r, reference)) for r in rows]
    splits = leave_one_strategy_out(samples)
    model = structural_score(splits)
    return dict(zip(model.labels, model.errors)), best_single_metric(splits)


def corrected(rows, reference: str) -> tuple[dict, dict, object]:
    """Label -> error of the kernel model + network correction: fitted without the network (leave one network
    out), and without the network's strategy (leave one strategy out); and the correction fitted on all."""
    from scaleprof.predict.evaluate import leave_one_strategy_out
    from scaleprof.predict.network_check import PointCheck, fit_correction

    def check(r):
        return PointCheck(r.sample.label, getattr(r, reference), r.kernel_ms, ())

    checks = [check(r) for r in rows]
    everything = fit_correction(checks)
    loo = {label: after for label, _, after in everything.loo_errors}
    by_label = {r.sample.label: r for r in rows}
    loso = {}
    for split in leave_one_strategy_out([r.sample for r in rows]):
        train = [check(by_label[s.label]) for s in split.train]
        fitted = fit_correction(train)
        for s in split.test:
            r = by_label[s.label]
            loso[s.label] = fitted.apply(r.kernel_ms) / getattr(r, reference) - 1
    return loo, loso, everything


def report(rows, reference: str, title: str) -> None:
    group, baseline = group_model(rows, reference)
    loo, loso, everything = corrected(rows, reference)
    kernel = {r.sample.label: r.kernel_ms / getattr(r, reference) - 1 for r in rows}
    print(f"\n{rows[0].sample.target}, against the {title}: {'network':<36} {'ms':>7} | group LOSO | kernel | "
          f"+corr LOO | +corr LOSO")
    for r in sorted(rows, key=lambda r: (r.sample.model, r.sample.strategy, r.sample.scale)):
        label = r.sample.label
        cells = [f"{100 * d[label]:+9.1f}%" if label in d else f"{'-':>10}" for d in (group, kernel, loo, loso)]
        print(f"  {label:<50} {getattr(r, reference):7.2f} | " + " | ".join(cells))
    print(f"  group model, leave one strategy out:          {summary(group.values())}")
    print(f"  best single-metric fit ({baseline.method}), same split: {summary(baseline.errors)}")
    print(f"  kernel model (never fitted on these):         {summary(kernel.values())}")
    print(f"  + correction, leave one network out:          {summary(loo.values())}")
    print(f"  + correction, leave one strategy out:         {summary(loso.values())}")
    print(f"  correction fitted on all: {everything.offset_ms:.3g} ms + {everything.scale:.3f} x kernel model "
          f"[{load()}]")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", required=True, help="a kernel calibration file of the target")
    parser.add_argument("--sweep", help="a sweep directory of the target (default: sweep MODELS first)")
    parser.add_argument("--target", default="cpu-ort-1t")
    parser.add_argument("--models", nargs="+", default=["efficientnet_b0", "resnet18"])
    parser.add_argument("--include-contended", action="store_true",
                        help="judge contended points too (`calibrate` leaves them out; a shared machine has no other)")
    parser.add_argument("--work", help="where the sweep goes (default: a temporary directory, kept)")
    args = parser.parse_args(argv)
    from scaleprof.predict import load_kernels

    cal = load_kernels(args.calibration)
    print(f"kernel calibration: {cal.target}, {cal.graphs} graphs, {len(cal.rows)} kernels, "
          f"{cal.seconds / 60:.1f} min, environment {cal.env_key}")
    path = Path(args.sweep) if args.sweep else sweep(args.target, args.models,
                                                     Path(args.work or tempfile.mkdtemp(prefix="bench-zoo-")))
    rows = rows_of(path, cal, args.include_contended)
    kernel_predictions(rows, cal)
    report(rows, "median_ms", "measured median")
    report(rows, "min_ms", "fastest run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
