"""`scaleprof sweep` / `report` / `demo` from the command line: bad input is one line, exit non-zero."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

MINIMAL = "models: [efficientnet_b0]\nstrategies: [d]\nscales: [1, 2]\ntargets: [cpu-ort]\n"


def scaleprof(*args, cwd=None, timeout=600):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "scaleprof.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("text, needles", [
    ("models: [a\n", ("malformed YAML",)),
    (MINIMAL + "scalez: 2\n", ("unknown key 'scalez'", "did you mean 'scales'")),
    (MINIMAL.replace("scales: [1, 2]", "scales: []"), ("scales: the list is empty",)),
])
def test_bad_configs(tmp_path, text, needles):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    proc = scaleprof("sweep", cfg, "-o", tmp_path / "out")
    assert proc.returncode == 2
    one_line_error(proc, *needles)
    assert not (tmp_path / "out").exists()


def test_unknown_model_is_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(MINIMAL.replace("efficientnet_b0", "efficientnet_b00"))
    one_line_error(scaleprof("sweep", cfg, "-o", tmp_path / "out"), "unknown model 'efficientnet_b00'",
                   "did you mean 'efficientnet_b0'")
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path):
    one_line_error(scaleprof("sweep", tmp_path / "nope.yaml"), "no such config file")


def test_missing_backend_is_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(MINIMAL.replace("[cpu-ort]", "[cpu-ort, h100-trt-fp16]") + "precisions: [fp32, fp16]\n")
    proc = scaleprof("sweep", cfg, "-o", tmp_path / "out")
    one_line_error(proc, "target 'h100-trt-fp16'", "tensorrt")


def test_incompatible_store_is_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    con = sqlite3.connect(out / "results.sqlite")
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    con.commit()
    con.close()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(MINIMAL)
    one_line_error(scaleprof("sweep", cfg, "-o", out), "schema version 0")
    one_line_error(scaleprof("report", out), "schema version 0")


def test_report_without_store(tmp_path):
    one_line_error(scaleprof("report", tmp_path), "no results store here")


def test_dry_run_lists_points_and_counts(tmp_path):
    proc = scaleprof("sweep", "demo", "--dry-run", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["point", "res", "GMACs"] and len(lines) == 1 + 15
    assert "efficientnet_b0 dWr(0.8) x4 b1 fp32 [cpu-ort]" in proc.stdout and "to do" in proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_real_sweep_report_and_rerun(tmp_path):
    """The real pipeline end to end on two points (ORT on the CPU), then a fully cached re-run."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(MINIMAL + "timing: {min_iters: 5, min_time_s: 0.2, max_time_s: 0.5, warmup_iters: 2, "
                             "layer_iters: 3}\n")
    out = tmp_path / "out"
    proc = scaleprof("sweep", cfg, "-o", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 measured" in proc.stdout and "report: " in proc.stdout
    assert (out / "report.html").exists() and list((out / "onnx").glob("*.onnx"))
    again = scaleprof("sweep", cfg, "-o", out, "--no-progress")
    assert again.returncode == 0 and "0 measured" in again.stdout and "2 already in the store" in again.stdout
    con = sqlite3.connect(out / "results.sqlite")
    [(n, layers)] = con.execute("SELECT count(*), sum(json_extract(layer_summary_json, '$.coverage') > 0.9) "
                                "FROM points WHERE status='ok'").fetchall()
    assert n == 2 and layers == 2
    assert con.execute("SELECT count(*) FROM layers").fetchone()[0] > 50


@pytest.mark.slow
def test_a_redefined_target_is_refused_not_taken_as_measured(tmp_path):
    """Issue 14: the same target name under other options is not "already measured". A real sweep
    (ORT on the CPU, one point), then the same name redefined: one line, the store unchanged; under
    a name of its own the new definition is measured beside the first."""
    base = ("models: [regnetx_002]\nstrategies: [d]\nscales: [1]\nresolutions: [32]\n"
            "timing: {min_iters: 3, min_time_s: 0.01, max_time_s: 0.2, warmup_iters: 1, warmup_s: 0, layers: false}\n")
    first, second, renamed = tmp_path / "first.yaml", tmp_path / "second.yaml", tmp_path / "renamed.yaml"
    first.write_text(base + "targets: [cpu-ort]\n")
    second.write_text(base + "targets: [{name: cpu-ort, backend: ort, options: {opt_level: disable}}]\n")
    renamed.write_text(base + "targets: [{name: cpu-ort-noopt, backend: ort, options: {opt_level: disable}}]\n")
    out = tmp_path / "out"
    proc = scaleprof("sweep", first, "-o", out, "--no-progress", "--no-report")
    assert proc.returncode == 0 and "1 measured" in proc.stdout, proc.stderr[-3000:]

    def dump():
        con = sqlite3.connect(out / "results.sqlite")
        try:
            return list(con.iterdump())
        finally:
            con.close()
    before = dump()
    line = one_line_error(scaleprof("sweep", second, "-o", out, "--no-progress"), "target 'cpu-ort'",
                    "another definition", "opt_level=disable", "own name")
    assert "options none" in line and dump() == before
    proc = scaleprof("sweep", renamed, "-o", out, "--no-progress", "--no-report")
    assert proc.returncode == 0 and "1 measured" in proc.stdout, proc.stderr[-3000:]
    con = sqlite3.connect(out / "results.sqlite")
    targets = dict(con.execute("SELECT target, json_extract(target_json, '$.options') FROM environments"))
    assert targets == {"cpu-ort": "{}", "cpu-ort-noopt": '{"opt_level":"disable"}'}
    assert con.execute("SELECT count(*) FROM points WHERE status='ok'").fetchone()[0] == 2
