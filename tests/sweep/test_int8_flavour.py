"""The int8 flavour rule (scaleprof.engines.int8_flavour): a sweep exports each target's int8 file in
the activation type its backend takes, and stores, reports and identifies each point with it."""

from __future__ import annotations

import csv

import pytest

from tests.sweep.fake_stages import FakeStages
from scaleprof.engines import int8_flavour
from scaleprof.engines.int8_flavour import flavour_of, int8_activations
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.runner import run_sweep
from scaleprof.sweep.store import Store

GRID = """
name: flavours
models: [efficientnet_b0]
strategies: [d]
scales: [1, 2]
precisions: [fp32, int8]
targets: [cpu-ort, {name: rtx, backend: tensorrt-rtx, device: cuda}]
"""


def sweep(out, stages=None):
    stages = stages or FakeStages()
    run_sweep(parse_config(GRID), out, stages=stages, progress=False, log=lambda m: None)
    return stages


def test_the_rule_gives_onnx_runtime_cpu_uint8_and_tensorrt_symmetric_int8():
    assert int8_activations("ort", "cpu") == "uint8"
    assert int8_activations("ort", "cuda:1") == "int8"
    assert int8_activations("tensorrt", "cuda") == "int8" and int8_activations("tensorrt-rtx", "cuda") == "int8"
    assert flavour_of("int8", "ort", "cpu") == "uint8"
    assert flavour_of("fp32", "ort", "cpu") == flavour_of("fp8", "tensorrt-rtx", "cuda") == ""


def test_grid_points_carry_their_targets_flavour_in_their_identity():
    points = parse_config(GRID).points()
    flavours = {(p.precision, p.target): p.flavour for p in points}
    assert flavours[("int8", "cpu-ort")] == "uint8" and flavours[("int8", "rtx")] == "int8"
    assert flavours[("fp32", "cpu-ort")] == "" and flavours[("fp32", "rtx")] == ""
    cpu = next(p for p in points if p.precision == "int8" and p.target == "cpu-ort")
    assert cpu.key.endswith("|int8|act=uint8") and "int8(act=uint8)" in cpu.label
    fp32 = next(p for p in points if p.precision == "fp32")
    assert "act=" not in fp32.key


def test_a_sweep_exports_one_file_per_flavour_and_stores_it(tmp_path):
    stages = sweep(tmp_path)
    int8 = {(key, flavour) for key, precision, flavour in stages.exported if precision == "int8"}
    assert {flavour for _, flavour in int8} == {"uint8", "int8"}
    assert len(int8) == 4                     # 2 networks x 2 flavours, each exported once
    assert all(flavour == "" for _, precision, flavour in stages.exported if precision == "fp32")
    with Store(tmp_path) as store:
        stored = {(p.target, p.precision): p.flavour for p in store.points()}
    assert stored == {("cpu-ort", "int8"): "uint8", ("rtx", "int8"): "int8",
                      ("cpu-ort", "fp32"): None, ("rtx", "fp32"): None}


def test_results_csv_and_report_name_the_flavour(tmp_path):
    from scaleprof.report import write_report

    sweep(tmp_path)
    paths = write_report(tmp_path, plots=False)
    with open(paths.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["target"], r["precision"], r["flavour"]) for r in rows} == {
        ("cpu-ort", "int8", "uint8"), ("rtx", "int8", "int8"), ("cpu-ort", "fp32", ""), ("rtx", "fp32", "")}
    markdown = paths.markdown.read_text()
    assert "int8(act=uint8)" in markdown and "int8(act=int8)" in markdown


def test_a_change_of_flavour_is_a_new_point_never_the_old_measurement(tmp_path, monkeypatch):
    monkeypatch.setattr(int8_flavour, "INT8_ACTIVATIONS", {})          # everything symmetric int8
    sweep(tmp_path)
    monkeypatch.setattr(int8_flavour, "INT8_ACTIVATIONS", {("ort", "cpu"): "uint8"})
    again = sweep(tmp_path, FakeStages())
    assert {(p, f) for _, p, f in again.exported} == {("int8", "uint8")}    # only the new flavour's points
    with Store(tmp_path) as store:
        cpu_int8 = sorted(p.flavour for p in store.points() if p.target == "cpu-ort" and p.precision == "int8")
    assert cpu_int8 == ["int8", "int8", "uint8", "uint8"]     # both kept, each under its own flavour


@pytest.mark.parametrize("flavour, name", [("uint8", "-int8-uint8act.onnx"), ("", "-fp32.onnx")])
def test_the_export_cache_names_the_flavour_and_exports_it(tmp_path, monkeypatch, flavour, name):
    import scaleprof.export.onnx_export as export
    from scaleprof.models import base_spec
    from scaleprof.sweep.stages import UpstreamStages

    asked = []
    monkeypatch.setattr(export, "export_onnx", lambda spec, path, options: asked.append((path, options)))
    precision = "int8" if flavour else "fp32"
    path = UpstreamStages().export(base_spec("efficientnet_b0"), precision, flavour, tmp_path)
    assert path.name.endswith(name) and asked[0][0] == path
    assert asked[0][1].int8_activations == (flavour or "int8") and asked[0][1].precision == precision


def test_a_cached_export_of_another_flavour_is_exported_again(tmp_path, monkeypatch):
    import dataclasses

    import scaleprof.export.onnx_export as export
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec
    from scaleprof.sweep.stages import UpstreamStages

    spec = dataclasses.replace(base_spec("regnetx_002"), resolution=64)
    path = tmp_path / f"{spec.model}-{spec.key}-int8-uint8act.onnx"
    export_onnx(spec, path, ExportOptions(precision="int8", check_parity=False))   # symmetric, under the uint8 name
    asked = []
    monkeypatch.setattr(export, "export_onnx", lambda spec, path, options: asked.append(options.int8_activations))
    assert UpstreamStages().export(spec, "int8", "uint8", tmp_path) == path
    assert asked == ["uint8"] and not path.exists()      # the wrong flavour was removed, the right one asked for
