"""The report of the committed H100 sweep results, as this scaleprof writes it: per-batch verdicts
and the layer count.

The H100 run (tests/fixtures/gpu/h100/gpu_validation_results.json) was stored before scaleprof
counted layers. This script counts them for every configuration of the sweep (each point's
model, strategy, alpha and s give its spec again: the flops it finds are the recorded ones, which
it checks), writes them to tests/fixtures/gpu/h100/layer_counts.json, rebuilds a results store from
the recorded points with those counts, and writes that store's report.

Usage: python -m benchmarks.h100_report [OUT_DIR]   (default: a temporary directory; the report.md
is also copied to tests/fixtures/gpu/h100/gpu_validation_report_per_batch.md)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

H100 = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gpu" / "h100"


def config_key(point: dict) -> str:
    """How layer_counts.json names a point's network: model|strategy|alpha|s."""
    return f"{point['model']}|{point['strategy']}|{point['alpha']}|{float(point['scale']):g}"


def count_layers(points: list[dict]) -> dict[str, int]:
    """Layers executed per inference of every network of the sweep (the resolution does not change it)."""
    from scaleprof.complexity import count_spec
    from scaleprof.models import base_spec, scale_spec

    counts: dict[str, int] = {}
    for p in points:
        key = config_key(p)
        if key in counts:
            continue
        spec = base_spec(p["model"]) if p["scale"] == 1 else scale_spec(p["model"], p["strategy"], p["scale"],
                                                                        p["alpha"])
        found = count_spec(spec, resolution=p["resolution"])
        if found.flops != p["flops"]:
            raise SystemExit(f"{key}: counted {found.flops} flops, the sweep recorded {p['flops']}")
        counts[key] = found.layer_count
        print(f"{key}: {found.layer_count} layers {found.layer_kinds}", file=sys.stderr)
    return counts


def fill_store(out: Path, results: dict, layer_counts: dict[str, int]) -> None:
    """A results store holding the recorded points (and their environments) with their layer counts."""
    from scaleprof.sweep.result import PointResult
    from scaleprof.sweep.store import Store

    with Store(out) as store:
        sweep = store.begin_sweep("gpu-validation-efficientnet_b0",
                                  {"name": "gpu-validation-efficientnet_b0", "convention": results["convention"]})
        for env in results["environments"]:
            store.put_environment(env["env_key"], env["target"], env["environment"])
        for p in results["points"]:
            spec = {k: p[k] for k in ("depth_multiplier", "width_multiplier", "flops_ratio")}
            store.put_point(PointResult(
                point_key=f"{config_key(p)}|{p['resolution_requested']}|b{p['batch']}|{p['precision']}",
                target=p["target"], env_key=p["env_key"], status="ok", model=p["model"], strategy=p["strategy"],
                alpha=p["alpha"], scale=p["scale"], resolution=p["resolution"], batch=p["batch"],
                precision=p["precision"], backend=p["backend"], device=p["device"],
                resolution_requested=p["resolution_requested"], spec=spec, flops=p["flops"], params=p["params"],
                acts=p["acts"], layer_count=layer_counts[config_key(p)], engine_key=p["engine_key"],
                latency=PointResult.from_flat(p).latency), sweep)
        store.end_sweep(sweep)


def main(out: Path) -> int:
    from scaleprof.report import write_report

    results = json.loads((H100 / "gpu_validation_results.json").read_text())
    layer_counts = count_layers(results["points"])
    (H100 / "layer_counts.json").write_text(json.dumps(layer_counts, indent=1, sort_keys=True) + "\n")
    fill_store(out, results, layer_counts)
    paths = write_report(out, plots=False)      # the copy beside the fixtures has no image folder
    shutil.copyfile(paths.markdown, H100 / "gpu_validation_report_per_batch.md")
    for verdict in paths.verdicts:
        print(verdict)
    print(f"report: {paths.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="h100-report-"))))
