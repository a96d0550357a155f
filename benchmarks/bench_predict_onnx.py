"""Predicting any CNN from its ONNX file (issue 20): kernel-calibrated predictions of networks of families
the zoo does not hold, against their measured latency, beside a flops-only and a flops+acts fit judged
leave-one-network-out on the same networks; per layer, the five most expensive kernels' predicted and
measured shares; prediction time against build + measure time. Prints figures; asserts nothing.

    python -m benchmarks.bench_predict_onnx [--target cpu-ort-1t] [--calibration FILE | --budget MIN]
                                            [--work DIR] [--nets mobilenet_v2 ...] [--repeats 5] [--zoo DIR]

Without --calibration it runs `calibrate --kernels` first (the budget, default 8 minutes); the networks
judged are never part of it (it times generated kernels only). With --zoo DIR (a sweep of the shipped
zoo_mix config on the target, profiled per layer) it also prints the kernel model with the zoo's in-network
kernels added, and with the network-level correction fitted on the zoo's networks only (never on the
networks judged), beside the uncorrected figures, and the zoo side's leave-one-network-out errors. Networks are exported from torchvision
with random weights (weights=None), batch 1 at 224 px, into --work (kept between runs). Measurement:
ONNX Runtime at the target's threads and optimisation level, IO binding, the networks timed in
interleaved rounds (a load spike hits all of them), median and minimum per network. On a shared
machine the load average printed beside each figure says how much to trust it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

NETS = ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_x1_0", "mnasnet1_0",
        "densenet121", "squeezenet1_1", "googlenet", "convnext_tiny", "vgg11", "resnext50_32x4d", "alexnet")
PER_LAYER = ("mobilenet_v2", "resnext50_32x4d", "densenet121")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (1 min) {five:.1f} (5 min), {os.cpu_count()} CPUs"


def export(names, work: Path) -> dict:
    import torch
    import torchvision

    paths = {}
    for name in names:
        path = work / f"{name}.onnx"
        if not path.is_file():
            start = time.perf_counter()
            model = getattr(torchvision.models, name)(weights=None).eval()
            torch.onnx.export(model, torch.randn(1, 3, 224, 224), str(path), opset_version=17, dynamo=False,
                              input_names=["input"])
            print(f"  exported {name} in {time.perf_counter() - start:.1f} s")
        paths[name] = path
    return paths


def measure(paths: dict, threads, level: str, repeats: int, seconds: float = 0.3) -> dict:
    """name -> (median ms, min ms, session build s, median thread CPU ms), the networks timed in ``repeats``
    interleaved rounds. With one intra-op thread ORT computes on the calling thread, so its CPU time is the
    run's own compute, which other processes' time slices do not inflate (with more threads it is not)."""
    import numpy as np
    import onnxruntime

    from scaleprof.engines.ort import session_options

    sessions, times, cpu, built = {}, {name: [] for name in paths}, {name: [] for name in paths}, {}
    for name, path in paths.items():
        start = time.perf_counter()
        session = onnxruntime.InferenceSession(str(path), session_options(threads, level),
                                               providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        binding.bind_cpu_input("input", np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32))
        binding.bind_output(session.get_outputs()[0].name)
        session.run_with_iobinding(binding)
        built[name] = time.perf_counter() - start
        sessions[name] = (session, binding)
    for _ in range(repeats):
        for name, (session, binding) in sessions.items():
            start = time.perf_counter()
            while True:
                t0, c0 = time.perf_counter(), time.thread_time()
                session.run_with_iobinding(binding)
                times[name].append(1e3 * (time.perf_counter() - t0))
                cpu[name].append(1e3 * (time.thread_time() - c0))
                if time.perf_counter() - start > seconds and len(times[name]) >= 3:
                    break
    return {name: (statistics.median(t), min(t), built[name], statistics.median(cpu[name]))
            for name, t in times.items()}


def leave_one_out(features: dict, measured: dict) -> dict:
    """name -> prediction of a non-negative linear fit (relative error) to the other networks."""
    from scaleprof.predict.group_model import nnls_relative

    out = {}
    for held in features:
        rest = [n for n in features if n != held]
        coef = nnls_relative([features[n] for n in rest], [measured[n] for n in rest])
        out[held] = sum(c * x for c, x in zip(coef, features[held]))
    return out


def summary(errors: list) -> str:
    within = sum(abs(e) <= 0.10 for e in errors) / len(errors)
    return f"{100 * within:.0f}% within +-10%, median |error| {100 * statistics.median(abs(e) for e in errors):.1f}%"


def table(target, label, paths, graphs, predictions, reference, counts) -> None:
    """``predictions``: {column label: {network: NetworkPrediction}}, the first one's interval shown."""
    flops_fit = leave_one_out({n: [1.0, counts[n][0]] for n in paths}, reference)
    acts_fit = leave_one_out({n: [1.0, counts[n][0], counts[n][1]] for n in paths}, reference)
    names = list(predictions)
    print(f"\n{target}, against the {label}: {'network':<20} {'GMACs':>6} {'measured ms':>11} "
          + " ".join(f"{n[:14]:>14} {'error':>7}" for n in names) + f" | {'flops fit':>9} {'flops+acts':>10}")
    errors = {**{n: [] for n in names}, "flops": [], "acts": []}
    for name in paths:
        m = reference[name]
        cells = []
        for column in names:
            p = predictions[column][name]
            errors[column].append(p.latency_ms / m - 1)
            cells.append(f"{p.latency_ms:>14.2f} {100 * errors[column][-1]:>+6.1f}%")
        errors["flops"].append(flops_fit[name] / m - 1)
        errors["acts"].append(acts_fit[name] / m - 1)
        print(f"  {name:<20} {graphs[name].flops / 1e9:>6.2f} {m:>11.2f} " + " ".join(cells)
              + f" | {100 * errors['flops'][-1]:>+8.1f}% {100 * errors['acts'][-1]:>+9.1f}%")
    for column in names:
        print(f"  {column}: {summary(errors[column])}; errors signed median {100 * statistics.median(errors[column]):+.1f}%")
    print(f"  flops-only fit (leave-one-network-out): {summary(errors['flops'])}")
    print(f"  flops+acts fit (leave-one-network-out): {summary(errors['acts'])}")


def zoo_side(cal, zoo: str):
    """The calibration with a zoo sweep's in-network kernels added and the network correction fitted on the
    zoo's networks only; prints the zoo side's leave-one-network-out figures."""
    from scaleprof.predict.network_check import correction_summary, fit_correction, sweep_checks
    from scaleprof.predict.sweep_kernels import sweep_kernel_rows

    print(f"== zoo sweep {zoo}: in-network kernels and the network-level correction [{load()}]")
    rows, added = sweep_kernel_rows(zoo, cal)
    with_zoo = cal.with_rows(rows, source=added["source"])
    print(f"  added {added['kernels']} profiled kernels of {added['points']} points "
          f"({added['layers_unmatched']} layers matched no kernel)")
    checks = sweep_checks(zoo, with_zoo)
    correction = fit_correction(checks)
    for label, before, after in correction.loo_errors:
        print(f"  {label:<40} uncorrected {100 * before:+6.1f}%  corrected, held out {100 * after:+6.1f}%")
    print(f"  {correction_summary(correction)} (the zoo networks' own kernels are in the kernel data)")
    return with_zoo.with_correction(correction)


def per_layer(cal, path, threads, level) -> None:
    import onnx

    from scaleprof.predict import time_graph

    rows, _ = time_graph(onnx.load(str(path)), {"input": (1, 3, 224, 224)}, threads, level)
    measured_total = sum(ms for _, ms in rows) or 1.0
    estimates = [(k, cal.model.estimate(k).ms, ms) for k, ms in rows]
    predicted_total = sum(p for _, p, _ in estimates) or 1.0
    print(f"  {path.stem}: the five most expensive kernels measured (profiled), share of all kernels' time [{load()}]")
    diffs = []
    for k, predicted, ms in sorted(estimates, key=lambda e: -e[2])[:5]:
        a, b = 100 * predicted / predicted_total, 100 * ms / measured_total
        diffs.append(abs(a - b))
        print(f"    {k.key:<22} {k.channels_in:>5}->{k.channels_out:<5} {k.size_out:>6} px k{k.kernel} s{k.stride} "
              f"g{k.groups:<5} predicted {a:5.1f}%  measured {b:5.1f}%  ({a - b:+.1f} pp)")
    print(f"    worst difference {max(diffs):.1f} pp (goal: within 5 pp)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cpu-ort-1t")
    parser.add_argument("--calibration", help="a kernel calibration file (default: calibrate now)")
    parser.add_argument("--budget", type=float, default=8.0, help="calibration minutes when calibrating now")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "scaleprof-bench-onnx"))
    parser.add_argument("--nets", nargs="+", default=list(NETS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--zoo", help="a zoo sweep directory profiled per layer on the target (e.g. the shipped "
                                      "zoo_mix config): its kernels are added and the network correction fitted")
    args = parser.parse_args(argv)

    from scaleprof.predict import (calibrate_kernels, file_kernels, load_kernels, ort_settings, predict_kernels,
                                   save_kernels, target_definition)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    threads, level = ort_settings(target_definition(args.target))
    print(f"== networks (torchvision, weights=None, batch 1, 224 px) into {work}")
    paths = export(args.nets, work)
    if args.calibration:
        cal = load_kernels(args.calibration)
        print(f"== kernel calibration {args.calibration}: {cal.graphs} graphs, {len(cal.rows)} kernels, timed in "
              f"{cal.seconds / 60:.1f} min")
    else:
        print(f"== calibrate --kernels --target {args.target} --budget {args.budget:g} [{load()}]")
        cal = calibrate_kernels(args.target, args.budget)
        print(f"  {cal.graphs} graphs, {len(cal.rows)} kernels in {cal.seconds / 60:.1f} min; saved "
              f"{save_kernels(cal, work / 'calibrations')} [{load()}]")
    zoo = zoo_side(cal, args.zoo) if args.zoo else None
    print(f"== prediction from the graph alone (in-process; the first call also imports onnx) [{load()}]")
    predicted, graphs, seconds = {}, {}, {}
    for name, path in paths.items():
        start = time.perf_counter()
        graphs[name] = file_kernels(path, threads, level)
        predicted[name] = predict_kernels(cal.model, graphs[name].kernels)
        seconds[name] = time.perf_counter() - start
    predictions = {"kernel model": predicted}
    if zoo is not None:
        predictions["+ zoo kernels"] = {n: predict_kernels(zoo.model, g.kernels) for n, g in graphs.items()}
        predictions["+ zoo correction"] = {n: predict_kernels(zoo.model, g.kernels, correction=zoo.correction)
                                           for n, g in graphs.items()}
    print(f"== measuring, {args.repeats} interleaved rounds [{load()}]")
    measured = measure(paths, threads, level, args.repeats)
    print(f"   done [{load()}]")
    graph_counts = {n: (float(g.flops), float(sum(k.bytes_written for k in g.kernels
                                                   if k.kind.endswith("conv") or k.kind == "linear")))
                    for n, g in graphs.items()}
    columns = [(0, "measured median"), (1, "measured minimum")]
    if threads == 1:
        columns.append((3, "measured thread CPU time (median)"))
    for column, label in columns:
        reference = {n: m[column] for n, m in measured.items()}
        table(args.target, label, paths, graphs, predictions, reference, graph_counts)
    print(f"  [{load()}]")
    print("\n== time per network: predict from the file against build + measure")
    for name in paths:
        print(f"  {name:<20} predict {seconds[name]:.2f} s; ORT session build {measured[name][2]:.2f} s + measuring "
              f"{args.repeats} rounds of >= 0.3 s")
    print(f"\n== per layer (ONNX Runtime's profiler on the network itself) [{load()}]")
    for name in [n for n in PER_LAYER if n in paths]:
        per_layer(cal, paths[name], threads, level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
