"""Hostile input through the real CLI (issue 14): every case ends in one line on stderr and its exit code,
with no traceback, nothing written outside the output and the results store unchanged.

The table runs in one subprocess under an address-space limit (RLIMIT_AS): each case calls
``scaleprof.cli.main`` there with its own stdout and stderr, so torch is imported once for all of them.
What needs a process of its own (closed or full standard streams, the umask, a killed run's
leftovers) has its own tests below. Classes: 1 identity, 2 resource bounds, 3 expanding configs,
4 writes, 5 one-line failures, 6 nonsense accepted, 7 small ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.synthetic import fill_store, synthetic_rows

MEMORY_LIMIT = 6 << 30           # torch and onnxruntime map about 3 GB of address space
SWEEP = "models: [efficientnet_b0]\nstrategies: [d]\nscales: [1]\ntargets: [cpu-ort]\n"
BOMB = ('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(f'{c}: &{c} [{", ".join(["*" + p] * 9)}]\n' for p, c in zip("abcdefgh", "bcdefghi")))

MANIFEST = {"backend": "ort", "backend_version": "1", "device": "cpu", "device_name": "cpu", "precision": "fp32",
            "threads": None, "key": "k", "onnx_sha256": "", "onnx_path": "m.onnx", "artifact": "model.onnx",
            "shapes": [{"batch": 1, "resolution": 32}]}

GROUPS = ("conv", "depthwise conv", "SE", "elementwise", "pooling", "linear", "overhead")
CALIBRATIONS = {"nan": {"c0": float("nan")}, "negative": {"conv": [-1.0, 0.0, 0.0]}, "short": {"conv": [1.0]},
                "text": {"conv": ["1", 0.0, 0.0]}, "infinite-band": {"band": float("inf")}}


def calibration(**change) -> str:
    """A calibration file of target 'x' as `scaleprof calibrate` writes it, with ``change`` made."""
    coefficients = {g: change.get(g, [1e-9, 0.0, 0.0]) for g in GROUPS}
    model = {"coefficients": coefficients, "c0": change.get("c0", 0.1), "kappa": 1.0, "method": "end-to-end"}
    fit = {"model": model, "band": change.get("band", 0.1), "ranges": {}, "batches": [1], "networks": 3}
    return json.dumps({"format": "scaleprof-calibration", "version": 1, "target": "x", "env_key": "e",
                       "fits": {"fp32 b1": fit}, "families": ["efficientnet"], "models": ["efficientnet_b0"]})


# file name -> content, written into the case folder before the table runs
FILES = {
    "bomb.yaml": BOMB + SWEEP.replace("targets: [cpu-ort]", "targets: [{name: t, backend: ort, options: {o: *i}}]"),
    "deep.yaml": SWEEP + "budget_ms: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-json.yaml": '{"models": ' + "[" * 3000 + "]" * 3000 + "}\n",
    "dup.yaml": SWEEP + "scales: [4]\n",
    "recursive.yaml": SWEEP.replace("targets: [cpu-ort]", "targets: &r [cpu-ort, *r]"),
    "huge-int.yaml": SWEEP + "batch_sizes: [" + "9" * 5000 + "]\n",
    "big.yaml": SWEEP + "#" * (2 << 20) + "\n",
    "not-utf8.yaml": b"models: [\xff\xfe]\n",
    "escape.yaml": "name: ../../escaped\n" + SWEEP,
    "absolute.yaml": "name: /tmp/scaleprof-hostile-absolute\n" + SWEEP,
    "newline-name.yaml": 'name: "a\\nb"\n' + SWEEP,
    "batch-huge.yaml": SWEEP + "batch_sizes: [1000000000000000000000000000000]\n",
    "res-huge.yaml": SWEEP + "resolutions: [100000]\n",
    "res-one.yaml": SWEEP + "resolutions: [1]\n",
    "scale-huge.yaml": SWEEP.replace("scales: [1]", "scales: [1.0e+6]"),
    "scale-nan.yaml": SWEEP.replace("scales: [1]", "scales: [.nan]"),
    "threads-huge.yaml": SWEEP.replace("[cpu-ort]", "[{name: t, backend: ort, threads: 100000}]"),
    "target-newline.yaml": SWEEP.replace("[cpu-ort]", '[{name: "t\\nx", backend: ort}]'),
    "budget-nan.yaml": SWEEP + "budget_ms: [.nan]\n",
    "device-newline.yaml": SWEEP.replace("[cpu-ort]", '[{name: t, backend: ort, device: "cpu\\n"}]'),
    "timing-huge.yaml": SWEEP + "timing: {min_time_s: " + "9" * 400 + "}\n",
    "memory.yaml": SWEEP + "batch_sizes: [4096]\nresolutions: [4096]\n",
    "redefined.yaml": SWEEP.replace("[cpu-ort]", "[{name: cpu-ort, backend: ort, options: {opt_level: disable}}]"),
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "times-nan.json": '[{"startComputeMs": 0, "endComputeMs": 1, "computeMs": NaN, "latencyMs": 1}]',
    "times-inf.json": '[{"startComputeMs": 0, "endComputeMs": 1, "computeMs": Infinity, "latencyMs": 1}]',
    "times-negative.json": '[{"startComputeMs": 0, "endComputeMs": 1, "computeMs": -3, "latencyMs": 1}]',
    "profile-nan.json": '[{"count": 10}, {"name": "conv", "timeMs": NaN, "averageMs": 1, "percentage": 100}]',
    "engine-escape/manifest.json": json.dumps({"backend": "ort", "artifact": "../../../etc/passwd", "shapes": []}),
    "engine-bad-shape/manifest.json": json.dumps({"backend": "ort", "shapes": [{"batch": -1, "resolution": "x"}]}),
    "engine-wrong-types/manifest.json": '{"backend": 7, "shapes": "all", "precision": ["fp32"]}',
    "engine-wrong-backend/manifest.json": json.dumps(dict(MANIFEST, backend="nonsense")),
    "engine-not-json/manifest.json": "{not json",
    # round 3 (issue 23)
    "plain.yaml": SWEEP,
    "layer-iters.yaml": SWEEP + "timing: {layer_iters: 100000000}\n",
    "max-time-huge.yaml": SWEEP + "timing: {max_time_s: 100000000}\n",
    "target-ci-1.yaml": SWEEP + "timing: {target_ci: 1}\n",
    "timing-zero.yaml": SWEEP + "timing: 0\n",
    "timing-false.yaml": SWEEP + "timing: false\n",
    "grid-huge.yaml": SWEEP.replace("scales: [1]", "scales: [" + ", ".join(f"{1 + i / 1e5:.5f}" for i in range(25_000))
                                    + "]"),
    "option-unknown.yaml": SWEEP.replace("[cpu-ort]", "[{name: t, backend: ort, options: {bogus: 1}}]"),
    "ep-missing.yaml": SWEEP.replace("[cpu-ort]", "[{name: t, backend: ort, options: {ep: tensorrt}}]"),
    "detector-res.yaml": SWEEP.replace("efficientnet_b0", "tf_efficientdet_d0") + "resolutions: [320]\n",
    "fractional-phi.yaml": SWEEP.replace("efficientnet_b0", "tf_efficientdet_d0").replace("[d]", "[en]")
                                .replace("scales: [1]", "scales: [3]"),
    "unreachable.yaml": SWEEP.replace("scales: [1]", "scales: [0.01]"),
    "nul.yaml": SWEEP.replace("[efficientnet_b0]", "[efficientnet_b0\0]"),
    "times-zero.json": '[{"startComputeMs": 0, "endComputeMs": 0, "computeMs": 0, "latencyMs": 0}]',
    "times-true.json": '[{"startComputeMs": 0, "endComputeMs": 1, "computeMs": true, "latencyMs": 1}]',
    "times-text.json": '[{"startComputeMs": 0, "endComputeMs": 1, "computeMs": "1", "latencyMs": 1}]',
    "scales-collide.yaml": SWEEP.replace("scales: [1]", "scales: [2, 2.0000001]"),
    "empty-store/results.sqlite": "",
    **{f"calibration-{name}.json": calibration(**change) for name, change in CALIBRATIONS.items()},
    "times-1e308.json": '[{"startComputeMs": 0, "endComputeMs": 1, "computeMs": 1e308, "latencyMs": 1}]',
}

# (case, argv, exit code, words of the one stderr line); {dir} is the case folder, {onnx} a small image
# model, {store} a results store, {damaged} one with a malformed row, {formulas} one whose names start
# like spreadsheet formulas (all synthetic, all checked unchanged after the table)
CASES = [
    # 2 resource bounds: refused before any work, saying the limit and why
    ("scale-1e6", ["scale", "efficientnet_b0", "--strategy", "d", "--scale", "1e6"], 2, "above 256"),
    ("scale-1e300", ["scale", "efficientnet_b0", "--strategy", "d", "--scale", "1e300"], 2, "above 256"),
    ("scale-inf", ["count", "efficientnet_b0", "--strategy", "w", "--scale", "inf"], 2, "positive number"),
    ("scale-nan", ["scale", "efficientnet_b0", "--strategy", "w", "--scale", "nan"], 2, "positive number"),
    ("phi-2000", ["scale", "efficientnet_b0", "--strategy", "en", "--phi", "2000"], 2, "phi 2000 is above 8"),
    ("phi-minus-2000", ["scale", "efficientnet_b0", "--strategy", "en", "--phi", "-2000"], 2, "must be > 0"),
    ("scale-1e-9", ["scale", "efficientnet_b0", "--strategy", "w", "--scale", "1e-9"], 2, "cannot reach x1e-09"),
    ("predict-phi-2000", ["predict", "efficientnet_b0", "--strategy", "en", "--phi", "2000", "--target", "x"], 2,
     "phi 2000 is above 8"),
    ("predict-batch-huge", ["predict", "efficientnet_b0", "--batch", "100000", "--target", "x"], 2, "largest batch"),
    ("recommend-max-scale", ["recommend", "efficientnet_b0", "--budget-ms", "5", "--max-scale", "1e9", "--target",
                             "x"], 2, "--max-scale 1e+09 is above 256"),
    ("count-batch-1e9", ["count", "efficientnet_b0", "--batch", "1000000000"], 2, "largest batch"),
    ("count-batch-text", ["count", "efficientnet_b0", "--batch", "1e9"], 2, "invalid int value"),
    ("count-res-100000", ["count", "efficientnet_b0", "--resolution", "100000"], 2, "from 32"),
    ("export-batch-huge", ["export", "efficientnet_b0", "--static", "--batch", "100000", "-o", "{dir}/out/m.onnx"],
     2, "largest batch"),
    ("export-memory", ["export", "efficientnet_b0", "--static", "--batch", "4096", "--resolution", "4096",
                       "-o", "{dir}/out/m.onnx"], 2, "this machine allows"),
    ("build-threads", ["build", "{onnx}", "--threads", "100000", "-o", "{dir}/out"], 2, "per core"),
    ("build-threads-0", ["build", "{onnx}", "--threads", "0", "-o", "{dir}/out"], 2, "positive integer"),
    ("sweep-batch-1e30", ["sweep", "{dir}/batch-huge.yaml", "-o", "{dir}/out"], 2, "largest batch"),
    ("sweep-res-100000", ["sweep", "{dir}/res-huge.yaml", "-o", "{dir}/out"], 2, "from 32 to 4096"),
    ("sweep-scale-1e6", ["sweep", "{dir}/scale-huge.yaml", "-o", "{dir}/out"], 2, "above 256"),
    ("sweep-scale-nan", ["sweep", "{dir}/scale-nan.yaml", "-o", "{dir}/out"], 2, "positive number"),
    ("sweep-threads", ["sweep", "{dir}/threads-huge.yaml", "-o", "{dir}/out"], 2, "per core"),
    ("sweep-timing-huge", ["sweep", "{dir}/timing-huge.yaml", "-o", "{dir}/out"], 2, "expected a number"),
    ("sweep-memory", ["sweep", "{dir}/memory.yaml", "-o", "{dir}/out"], 2, "this machine allows"),
    # 3 configs cannot expand
    ("yaml-alias-bomb", ["sweep", "{dir}/bomb.yaml", "-o", "{dir}/out"], 2, "expand to more than"),
    ("yaml-deep", ["sweep", "{dir}/deep.yaml", "-o", "{dir}/out"], 2, "nested more than"),
    ("yaml-deep-json", ["sweep", "{dir}/deep-json.yaml", "-o", "{dir}/out"], 2, "nested more than"),
    ("yaml-duplicate-key", ["sweep", "{dir}/dup.yaml", "-o", "{dir}/out"], 2, "duplicate key 'scales'"),
    ("yaml-recursive-alias", ["sweep", "{dir}/recursive.yaml", "-o", "{dir}/out"], 2, "refer to themselves"),
    ("yaml-huge-int", ["sweep", "{dir}/huge-int.yaml", "-o", "{dir}/out"], 2, "malformed YAML"),
    ("yaml-2mb", ["sweep", "{dir}/big.yaml", "-o", "{dir}/out"], 2, "larger than 1 MB"),
    ("yaml-dev-zero", ["sweep", "/dev/zero", "-o", "{dir}/out"], 2, "larger than 1 MB"),
    ("yaml-not-utf8", ["sweep", "{dir}/not-utf8.yaml", "-o", "{dir}/out"], 2, "cannot read the config"),
    ("yaml-directory", ["sweep", "{dir}", "-o", "{dir}/out"], 2, "cannot read the config"),
    ("ingest-deep-json", ["ingest", "{dir}/deep.json"], 2, "nested too deeply"),
    # 4 writes stay where the user pointed
    ("name-escapes", ["sweep", "{dir}/escape.yaml", "--dry-run"], 2, "not a plain name"),
    ("name-absolute", ["sweep", "{dir}/absolute.yaml", "--dry-run"], 2, "not a plain name"),
    ("name-newline", ["sweep", "{dir}/newline-name.yaml", "--dry-run"], 2, "not a plain name"),
    ("export-to-fifo", ["export", "efficientnet_b0", "-o", "{dir}/fifo"], 2, "not a regular file"),
    ("export-to-device", ["export", "efficientnet_b0", "-o", "/dev/null"], 2, "not a regular file"),
    ("export-to-directory", ["export", "efficientnet_b0", "-o", "{dir}"], 2, "is a directory"),
    # 5 every failure is one line
    ("manifest-wrong-types", ["inspect", "{dir}/engine-wrong-types"], 2, "manifest"),
    ("manifest-not-json", ["inspect", "{dir}/engine-not-json"], 2, "manifest"),
    ("profile-manifest-wrong-types", ["profile", "{dir}/engine-wrong-types"], 2, "manifest"),
    ("profile-manifest-not-json", ["profile", "{dir}/engine-not-json"], 2, "is corrupt"),
    ("profile-manifest-wrong-backend", ["profile", "{dir}/engine-wrong-backend"], 2, "nonsense"),
    ("manifest-artifact-escape", ["inspect", "{dir}/engine-escape"], 2, "not a file inside the engine"),
    ("manifest-bad-shape", ["inspect", "{dir}/engine-bad-shape"], 2, "not a positive batch"),
    ("target-newline", ["sweep", "{dir}/target-newline.yaml", "-o", "{dir}/out"], 2, "no control characters"),
    ("store-malformed-row", ["report", "{damaged}", "--no-plots"], 0, "point row 2 (efficientnet_b0|d|"),
    # 6 nonsense is refused
    ("count-res-0", ["count", "efficientnet_b0", "--resolution", "0"], 2, "resolution 0"),
    ("count-res-negative", ["count", "efficientnet_b0", "--resolution", "-224"], 2, "resolution -224"),
    ("count-res-1", ["count", "efficientnet_b0", "--resolution", "1"], 2, "total stride"),
    ("sweep-res-1", ["sweep", "{dir}/res-one.yaml", "-o", "{dir}/out"], 2, "from 32 to 4096"),
    ("report-budget-nan", ["report", "{store}", "--budget-ms", "nan"], 2, "positive, finite"),
    ("report-budget-inf", ["report", "{store}", "--budget-ms", "1e309"], 2, "positive, finite"),
    ("report-budget-negative", ["report", "{store}", "--budget-ms", "-5"], 2, "positive, finite"),
    ("sweep-budget-nan", ["sweep", "{dir}/budget-nan.yaml", "-o", "{dir}/out"], 2, "budgets must be positive"),
    ("dry-run-force", ["sweep", "{dir}/dup.yaml", "--dry-run", "--force"], 2, "--dry-run runs nothing"),
    ("export-tolerance-no-parity", ["export", "efficientnet_b0", "--no-parity", "--tolerance", "1e-3",
                                    "-o", "{dir}/out/m.onnx"], 2, "with --no-parity there is none"),
    ("profile-max-time-inf", ["profile", "{onnx}", "--max-time", "inf", "-o", "{dir}/out"], 2, "finite"),
    ("build-device-newline", ["build", "{onnx}", "--device", "cpu\n", "-o", "{dir}/out"], 2, "unknown device"),
    ("sweep-device-newline", ["sweep", "{dir}/device-newline.yaml", "--dry-run"], 2, "device must be"),
    ("export-batch-dynamic", ["export", "efficientnet_b0", "--batch", "4", "-o", "{dir}/out/m.onnx"], 2,
     "applies only to a --static export"),
    ("profile-engine-backend", ["profile", "{dir}/engine-wrong-types", "--backend", "torch"], 2,
     "is an engine directory"),
    ("inspect-engine-resolution", ["inspect", "{dir}/engine-wrong-types", "--resolution", "64"], 2,
     "is an engine directory"),
    ("ingest-batch-huge", ["ingest", "{dir}/deep.json", "--batch", "100000"], 2, "largest batch"),
    ("ingest-times-nan", ["ingest", "{dir}/times-nan.json"], 2, "not a finite number"),
    ("ingest-times-inf", ["ingest", "{dir}/times-inf.json"], 2, "not a finite number"),
    ("ingest-times-negative", ["ingest", "{dir}/times-negative.json"], 2, "below 0"),
    ("ingest-profile-nan", ["ingest", "{dir}/profile-nan.json"], 2, "not a finite number"),
    ("build-shapes-unknown-input", ["build", "{onnx}", "--shapes", "images:1x3x32x32", "-o", "{dir}/out"], 2,
     "names input 'images'"),
    ("build-batch-huge", ["build", "{onnx}", "--batch", "100000", "-o", "{dir}/out"], 2, "largest batch"),
    ("build-resolution-huge", ["build", "{onnx}", "--resolution", "100000", "-o", "{dir}/out"], 2, "above 4096"),
    ("build-shapes-huge", ["build", "{onnx}", "--shapes", "input:100000x3x32x32", "-o", "{dir}/out"], 2,
     "largest batch"),
    ("profile-memory", ["profile", "{onnx}", "--batch", "4096", "--resolution", "4096", "-o", "{dir}/out"], 2,
     "this machine allows"),
    ("csv-formulas", ["report", "{formulas}", "--no-plots"], 0, ""),
    # round 3 (issue 23), class 1: the memory estimate sees every tensor, and no file is read whole unchecked
    ("build-resize-memory", ["build", "{dir}/resize.onnx", "--batch", "8", "--resolution", "512", "-o", "{dir}/out"],
     2, "this machine allows"),
    ("profile-resize-memory", ["profile", "{dir}/resize.onnx", "--batch", "8", "--resolution", "512", "-o",
                               "{dir}/out"], 2, "this machine allows"),
    ("build-huge-external-weights", ["build", "{dir}/huge/huge.onnx", "--resolution", "64", "-o", "{dir}/out"], 2,
     "this machine allows"),
    ("inspect-huge-external-weights", ["inspect", "{dir}/huge/huge.onnx", "--json"], 0, ""),
    ("ingest-huge-file", ["ingest", "{dir}/huge.times.json"], 2, "larger than 256 MB"),
    ("sweep-jobs-huge", ["sweep", "{dir}/plain.yaml", "-o", "{dir}/out", "--jobs", "100000"], 2, "per core"),
    # class 2: every loop and wait bounded
    ("profile-min-time-1e8", ["profile", "{onnx}", "--min-time", "1e8", "--max-time", "1e9", "-o", "{dir}/out"], 2,
     "above the most one timing may take"),
    ("profile-layer-iters-1e8", ["profile", "{onnx}", "--per-layer", "--iterations", "100000000", "-o", "{dir}/out"],
     2, "above the most one timing may take"),
    ("profile-wait-quiet-1e9", ["profile", "{onnx}", "--wait-quiet", "1e9", "-o", "{dir}/out"], 2,
     "above the most one timing may take"),
    ("sweep-wait-quiet-1e9", ["sweep", "{dir}/plain.yaml", "--wait-quiet", "1e9", "-o", "{dir}/out"], 2,
     "above the most one timing may wait"),
    ("sweep-layer-iters-1e8", ["sweep", "{dir}/layer-iters.yaml", "-o", "{dir}/out"], 2, "above the most"),
    ("sweep-max-time-1e8", ["sweep", "{dir}/max-time-huge.yaml", "-o", "{dir}/out"], 2, "above the most"),
    ("sweep-grid-25000", ["sweep", "{dir}/grid-huge.yaml", "--dry-run"], 2, "above the 20,000"),
    ("sweep-config-fifo", ["sweep", "{dir}/fifo", "-o", "{dir}/out"], 2, "a pipe or socket"),
    # class 4: no writes through or over links, no file where a folder was meant
    ("export-to-symlink", ["export", "efficientnet_b0", "-o", "{dir}/link.onnx"], 2, "symbolic link"),
    ("export-to-dangling-symlink", ["export", "efficientnet_b0", "-o", "{dir}/dangling.onnx"], 2, "symbolic link"),
    ("export-to-looping-symlink", ["export", "efficientnet_b0", "-o", "{dir}/loop.onnx"], 2, "symbolic link"),
    ("export-to-new-folder", ["export", "efficientnet_b0", "-o", "{dir}/out/newdir/"], 2, "names a folder"),
    ("report-symlinked-store", ["report", "{dir}/linked-store", "--no-plots"], 2, "symbolic link"),
    # class 6: a sweep refuses before it runs
    ("sweep-unknown-option", ["sweep", "{dir}/option-unknown.yaml", "-o", "{dir}/out"], 2, "unknown ort option"),
    ("sweep-missing-ep", ["sweep", "{dir}/ep-missing.yaml", "-o", "{dir}/out"], 2, "'tensorrt'"),
    ("sweep-target-ci-1", ["sweep", "{dir}/target-ci-1.yaml", "-o", "{dir}/out"], 2, "target CI"),
    ("sweep-detector-resolution", ["sweep", "{dir}/detector-res.yaml", "-o", "{dir}/out"], 2, "multiples of 128"),
    ("sweep-fractional-phi", ["sweep", "{dir}/fractional-phi.yaml", "-o", "{dir}/out"], 2, "integer phi"),
    ("sweep-unreachable-scale", ["sweep", "{dir}/unreachable.yaml", "-o", "{dir}/out"], 2, "cannot reach x0.01"),
    ("sweep-timing-zero", ["sweep", "{dir}/timing-zero.yaml", "-o", "{dir}/out"], 2, "expected a mapping"),
    ("sweep-timing-false", ["sweep", "{dir}/timing-false.yaml", "-o", "{dir}/out"], 2, "expected a mapping"),
    # class 7: one worded line of the right class
    ("inspect-bad-metadata", ["inspect", "{dir}/bad-meta.onnx"], 2, "not a JSON object"),
    ("sweep-nul-byte", ["sweep", "{dir}/nul.yaml", "--dry-run"], 2, "control character"),
    ("ingest-zero-times", ["ingest", "{dir}/times-zero.json"], 2, "of 0"),
    ("ingest-true", ["ingest", "{dir}/times-true.json"], 2, "not a number"),
    ("ingest-text-number", ["ingest", "{dir}/times-text.json"], 2, "not a number"),
    ("ingest-1e308", ["ingest", "{dir}/times-1e308.json"], 2, "above 1e+09"),
    ("export-dynamo-quiet", ["export", "regnetx_002", "--exporter", "dynamo", "--no-parity", "--resolution", "64",
                             "--json", "-o", "{dir}/out/dynamo.onnx"], 0, ""),   # no exporter log lines on success
    ("build-external-data-beside", ["build", "{dir}/ext/ext.onnx", "--resolution", "64", "--json", "-o", "{dir}/out"],
     0, ""),
    # class 3: results are stored under the label they were measured with
    ("build-torch-forged-metadata", ["build", "{dir}/forged.onnx", "--backend", "torch", "--resolution", "32", "-o",
                                     "{dir}/out"], 2, "its graph is not the efficientnet_b0"),
    ("sweep-scales-collide", ["sweep", "{dir}/scales-collide.yaml", "--dry-run"], 2, "same point"),
    # class 5: no nonsense published
    *[(f"predict-calibration-{name}", ["predict", "efficientnet_b0", "--target", "x", "--any-environment",
                                       "--calibration", f"{{dir}}/calibration-{name}.json"], 2, "damaged calibration")
      for name in CALIBRATIONS],
    *[(f"build-input-{name}", ["build", f"{{dir}}/input-{name}.onnx", "-o", "{dir}/out"], 2, "0 or less")
      for name in ("batch-0", "0x0", "minus-7")],
    ("build-batch-empty", ["build", "{onnx}", "--batch", "", "-o", "{dir}/out"], 2, "--batch is empty"),
    ("report-empty-store", ["report", "{dir}/empty-store", "--no-plots"], 2, "an empty file"),
    # 1 identity: a redefined target against a store that measured the preset
    ("redefined-target-dry-run", ["sweep", "{dir}/redefined.yaml", "-o", "{store}", "--dry-run"], 2,
     "another definition"),
    ("redefined-target", ["sweep", "{dir}/redefined.yaml", "-o", "{store}"], 2, "own name"),
]

RUNNER = r"""
import contextlib, io, json, sys, traceback
from scaleprof import cli

results = {}
for case, argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit:
            code = exit.code
        except BaseException:
            traceback.print_exc()
            code = "raised"
    results[case] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
json.dump(results, sys.__stdout__)
"""


def limited(limit: int = MEMORY_LIMIT):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def env() -> dict:
    src = str(Path(__file__).parents[1] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def scaleprof(*argv, cwd=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "scaleprof.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=env(), preexec_fn=kwargs.pop("preexec_fn", limited()), timeout=120, **kwargs)


def tiny_onnx(path: Path) -> Path:
    """A one-conv image model (dynamic N, H, W), made without torch."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1])], "tiny",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4, "H", "W"])],
                              [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def resize_onnx(path: Path) -> Path:
    """Resize x16 then a global average: no counted layer at all, 3 x (16 R)^2 floats in between."""
    import onnx
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 16, 16])
    graph = helper.make_graph([helper.make_node("Resize", ["input", "", "scales"], ["big"], mode="nearest"),
                               helper.make_node("GlobalAveragePool", ["big"], ["output"])], "resize",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 1, 1])], [scales])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def external_onnx(folder: Path, out_channels: int = 4, sparse: bool = False) -> Path:
    """A one-conv model whose weight lives in ``w.bin`` beside it (a sparse file of its full size when
    ``sparse``: its bytes are never written, and should never be read)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["output"])], "ext",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", out_channels, "H", "W"])],
                              [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, folder / f"{folder.name}.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    if sparse:                  # the same model, its weight declared out_channels x 3 x 3 x 3
        model = onnx.load(folder / f"{folder.name}.onnx", load_external_data=False)
        tensor = model.graph.initializer[0]
        tensor.dims[0] = out_channels
        nbytes = out_channels * 27 * 4
        for entry in tensor.external_data:
            if entry.key == "length":
                entry.value = str(nbytes)
        onnx.save(model, folder / f"{folder.name}.onnx")
        os.truncate(folder / "w.bin", nbytes)
    return folder / f"{folder.name}.onnx"


def round_three_files(folder: Path, root: Path) -> None:
    """The inputs of issue 23's cases that are not text: models, a huge sparse file, links, a bad store."""
    import onnx

    resize_onnx(folder / "resize.onnx")
    external_onnx(folder / "ext")
    external_onnx(folder / "huge", out_channels=50_000_000, sparse=True)        # 5.4 GB of weights
    with open(folder / "huge.times.json", "wb") as f:
        f.truncate(300 << 20)
    model = onnx.load(folder / "ext" / "ext.onnx")
    for key, value in (("scaleprof.spec", '{"model": 5}'), ("scaleprof.counts", "[1, 2]")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, folder / "bad-meta.onnx")
    forged = onnx.load(tiny_onnx(folder / "forged.onnx"))       # one conv, labelled as EfficientNet-B0
    for key, value in (("scaleprof.spec", json.dumps({"model": "efficientnet_b0", "family": "efficientnet"})),
                       ("scaleprof.counts", json.dumps({"flops": 1, "params": 1, "acts": 123456, "resolution": 32}))):
        entry = forged.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(forged, folder / "forged.onnx")
    for name, dims in (("batch-0", (0, 3, 32, 32)), ("0x0", (1, 3, 0, 0)), ("minus-7", (1, 3, -7, 32))):
        model = onnx.load(tiny_onnx(folder / f"input-{name}.onnx"))
        for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, dims):
            dim.Clear()
            dim.dim_value = size
        onnx.save(model, folder / f"input-{name}.onnx")
    (folder / "link-target.onnx").write_text("not to be replaced")
    os.symlink(folder / "link-target.onnx", folder / "link.onnx")
    os.symlink(folder / "nowhere.onnx", folder / "dangling.onnx")
    os.symlink("loop.onnx", folder / "loop.onnx")
    (folder / "linked-store").mkdir()
    fill_store(root / "link-target-store", synthetic_rows(strategies=("d",)))
    os.symlink(root / "link-target-store" / "results.sqlite", folder / "linked-store" / "results.sqlite")


def snapshot(root: Path) -> dict:
    """Every file under ``root``: its size and content hash (stores by their logical content)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm")):
            out[str(path.relative_to(root))] = (dump_store(path) if path.suffix == ".sqlite" else
                                                (path.stat().st_size, path.stat().st_mtime_ns)
                                                if path.stat().st_size > 64 << 20 else   # huge sparse inputs
                                                hashlib.sha256(path.read_bytes()).hexdigest())
        elif path.is_dir() or path.is_fifo():
            out[str(path.relative_to(root))] = "folder" if path.is_dir() else "fifo"
    return out


def dump_store(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
    finally:
        con.close()


def one_line(code, stderr: str, expected_code: int, words: str, case: str = "") -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == expected_code, f"{case}: exit {code}: {stderr[-2000:]}"
    assert "Traceback" not in stderr, f"{case}: {stderr[-2000:]}"
    assert len(lines) == 1, f"{case}: {stderr[-2000:]}"
    assert words in lines[0], f"{case}: {lines[0]}"
    return lines[0]


@pytest.fixture(scope="module")
def table_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    folder, work = root / "cases", root / "work" / "a" / "b"
    for name, content in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.mkfifo(folder / "fifo")
    onnx_path = tiny_onnx(folder / "tiny.onnx")
    round_three_files(folder, root)
    stores = {"store": root / "store", "damaged": root / "damaged", "formulas": root / "formulas"}
    fill_store(stores["store"], synthetic_rows(strategies=("d", "w")))
    fill_store(stores["damaged"], synthetic_rows(strategies=("d", "w")))
    with sqlite3.connect(stores["damaged"] / "results.sqlite") as con:
        con.execute("UPDATE points SET latency_json='{broken' WHERE id=2")
    con.close()
    formulas = synthetic_rows(strategies=("d",), target='=HYPERLINK("http://x")')
    fill_store(stores["formulas"], [dict(row, model="@SUM(A1)") for row in formulas])
    work.mkdir(parents=True)
    before = snapshot(root)
    cases = [(case, [a.format(dir=folder, onnx=onnx_path, **stores) for a in argv]) for case, argv, *_ in CASES]
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(cases), capture_output=True, text=True,
                          cwd=work, env=env(), preexec_fn=limited(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), before, snapshot(root), root


@pytest.mark.parametrize("case, argv, code, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line(table_results, case, argv, code, words):
    results, *_ = table_results
    result = results[case]
    if code == 0 and not words:
        assert result["code"] == 0 and not result["stderr"], f"{case}: {result['stderr']}"
    else:
        one_line(result["code"], result["stderr"], code, words, case)


def test_table_writes_nothing_and_leaves_the_stores_unchanged(table_results):
    _, before, after, _ = table_results
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    # a refused sweep may leave the caches of its validation (scaling searches and counts) in its own
    # output; the two reports are written beside their stores
    assert not [k for k in added if not k.startswith(("store/cache", "cases/out", "damaged/re", "formulas/re"))], added
    assert not changed and set(before) <= set(after), changed
    assert not Path("/tmp/scaleprof-hostile-absolute").exists()


def test_malformed_row_is_left_out_and_the_rest_reported(table_results):
    results, *_, root = table_results
    assert "5 measured points" in results["store-malformed-row"]["stdout"]
    assert len((root / "damaged" / "results.csv").read_text().splitlines()) == 1 + 5


def test_csv_cells_cannot_run_formulas(table_results):
    *_, root = table_results
    body = (root / "formulas" / "results.csv").read_text().splitlines()[1]
    assert body.startswith("'@SUM(A1),d,") and "'=HYPERLINK" in body
    assert json.loads((root / "formulas" / "results.json").read_text())["points"][0]["model"] == "@SUM(A1)"


# ------------------------------------------------------------------------- processes of their own

@pytest.fixture
def store(tmp_path):
    fill_store(tmp_path, synthetic_rows(strategies=("d",)))
    return tmp_path


def test_closed_stdout_is_a_failure(store):
    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "report", store, "--no-plots"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
                          preexec_fn=lambda: os.close(1), timeout=60)
    one_line(proc.returncode, proc.stderr, 1, "standard output is closed")


def test_full_stdout_is_a_failure_without_empty_parentheses(store):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "report", store, "--no-plots"], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env(), timeout=60)
    line = one_line(proc.returncode, proc.stderr, 1, "No space left on device")
    assert "()" not in line


def test_closed_stderr_keeps_the_error_off_stdout(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "report", tmp_path / "none"], capture_output=True,
                          text=True, env=env(), preexec_fn=lambda: os.close(2), timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""


def test_files_follow_the_umask_and_stale_temporaries_go(store):
    tmp_path = store
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    stale = tmp_path / f".report.md.{host}-{dead.stdout.strip()}.abc123.tmp"
    live = tmp_path / f".report.md.{host}-{os.getpid()}.abc123.tmp"
    stale.write_text("half")
    live.write_text("being written")

    def umask_022():
        os.umask(0o022)
        limited()()
    proc = scaleprof("report", tmp_path, "--no-plots", preexec_fn=umask_022)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results.csv").stat().st_mode & 0o777 == 0o644
    assert not stale.exists() and live.exists()


def test_unexpected_errors_are_one_line_with_a_debug_hint(monkeypatch, capsys):
    from scaleprof import cli
    from scaleprof.tools import models

    def boom(args):
        raise RuntimeError("deliberately broken\nsecond line")
    monkeypatch.setattr(models, "run", boom)
    assert cli.main(["models"]) == 1
    line = one_line(1, capsys.readouterr().err, 1, "unexpected RuntimeError: deliberately broken")
    assert "--debug" in line
    with pytest.raises(RuntimeError):
        cli.main(["models", "--debug"])
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "models"])


def test_sqlite_overflow_is_one_line(tmp_path):
    from scaleprof.errors import BadInput
    from scaleprof.sweep.result import PointResult
    from scaleprof.sweep.store import Store

    with Store(tmp_path) as store:
        with pytest.raises(BadInput, match="too large to store"):
            store.put_point(PointResult("k", "t", "e", "ok", "m", "d", None, 2.0, 224, 10**30, "fp32", "ort", "cpu"))
        assert store.points(None) == []


# ------------------------------------------------------------------------- round 3 (issue 23)

def test_an_engine_whose_onnx_moved_is_still_bounded_by_its_manifest(tmp_path):
    """Built where memory allows, profiled under a tighter limit after its ONNX file was moved away: the
    estimate recorded in the manifest refuses the shape (the engine would allocate 3.2 GB of Resize)."""
    model = resize_onnx(tmp_path / "resize.onnx")
    built = scaleprof("build", model, "--batch", "1,4", "--resolution", "512", "--json", "-o", tmp_path / "out",
                      preexec_fn=None)
    assert built.returncode == 0, built.stderr
    engine = json.loads(built.stdout)["engine"]
    model.rename(tmp_path / "moved.onnx")
    proc = scaleprof("profile", engine, "--batch", "4", "--resolution", "512", "--min-time", "0.1", "--no-roofline",
                     preexec_fn=limited(4 << 30))
    one_line(proc.returncode, proc.stderr, 2, "this machine allows")


@pytest.mark.parametrize("variables", [
    {"HOME": ""}, {"HOME": "relative-home"}, {"HOME": None, "XDG_CACHE_HOME": "relative-cache"},
    {"HOME": "/proc/scaleprof-no-home"},
], ids=["home-empty", "home-relative", "home-unset-xdg-relative", "home-unwritable"])
def test_no_home_writes_nothing_outside_and_fails_nothing(tmp_path, variables):
    """report (features cache, matplotlib) with HOME and XDG_CACHE_HOME unusable: it works, and writes
    nothing but its report beside the store (nothing in the working directory, nothing at /.cache)."""
    fill_store(tmp_path / "store", synthetic_rows(strategies=("d", "w")))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    environment = {k: v for k, v in env().items() if k not in ("SCALEPROF_CACHE_DIR", "XDG_CACHE_HOME",
                                                                 "MPLCONFIGDIR", *variables)}
    environment.update({k: v for k, v in variables.items() if v is not None})
    root_cache = Path("/.cache/scaleprof").exists()
    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "report", tmp_path / "store"], capture_output=True,
                          text=True, cwd=cwd, env=environment, timeout=300)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    assert list(cwd.iterdir()) == []
    assert Path("/.cache/scaleprof").exists() == root_cache
    assert (tmp_path / "store" / "report.html").is_file()


def test_the_caches_of_libraries_stay_in_scaleprofs(tmp_path):
    """With an ordinary HOME, profile (ONNX Runtime) and report (matplotlib) write under HOME only into
    scaleprof's cache: no ONNX Runtime device-id database, no matplotlib folder of its own."""
    home = tmp_path / "home"
    home.mkdir()
    fill_store(tmp_path / "store", synthetic_rows(strategies=("d", "w")))
    environment = {k: v for k, v in env().items() if k not in ("SCALEPROF_CACHE_DIR", "XDG_CACHE_HOME",
                                                                 "MPLCONFIGDIR", "ORT_DISABLE_TELEMETRY")}
    environment["HOME"] = str(home)
    for argv in (["profile", tiny_onnx(tmp_path / "tiny.onnx"), "--resolution", "32", "--min-time", "0.05",
                  "--no-roofline", "-o", tmp_path / "out"], ["report", tmp_path / "store"]):
        proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", *map(str, argv)], capture_output=True,
                              text=True, cwd=tmp_path, env=environment, timeout=300)
        assert proc.returncode == 0, proc.stderr
    written = {p.relative_to(home).parts[:2] for p in home.rglob("*") if p.is_file()}
    assert written and written <= {(".cache", "scaleprof")}, written


def test_store_rows_out_of_range_are_noted_and_left_out(tmp_path):
    """A hand-edited store: batch 0 and -8, negative flops, scale 1e308 and a status no run writes are
    each left out of the report with a note, never published as verdicts."""
    fill_store(tmp_path, synthetic_rows(strategies=("d", "w")))
    with sqlite3.connect(tmp_path / "results.sqlite") as con:
        total = con.execute("SELECT count(*) FROM points WHERE status='ok'").fetchone()[0]
        for column, value, row in (("batch", 0, 1), ("batch", -8, 2), ("flops", -5, 3), ("scale", 1e308, 4)):
            con.execute(f"UPDATE points SET {column}=? WHERE id=?", (value, row))
        con.execute("PRAGMA ignore_check_constraints = ON")
        con.execute("UPDATE points SET status='OK ' WHERE id=5")
    con.close()
    proc = scaleprof("report", tmp_path, "--no-plots")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(notes) == 5 and all("left out" in n for n in notes), notes
    assert "unknown status 'OK '" in notes[0]
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + total - 5


def test_an_engine_manifest_edited_to_1000_threads_is_refused(tmp_path):
    built = scaleprof("build", tiny_onnx(tmp_path / "tiny.onnx"), "--resolution", "32", "--json", "-o", tmp_path)
    assert built.returncode == 0, built.stderr
    manifest = Path(json.loads(built.stdout)["engine"]) / "manifest.json"
    manifest.write_text(json.dumps(dict(json.loads(manifest.read_text()), threads=1000)))
    proc = scaleprof("profile", manifest.parent, "--min-time", "0.05", "--no-roofline")
    one_line(proc.returncode, proc.stderr, 2, "per core")


def test_an_immutable_output_is_named_not_the_temporary_file(store):
    target = store / "results.csv"
    target.write_text("kept")
    if subprocess.run(["chattr", "+i", target], capture_output=True).returncode != 0:
        pytest.skip("chattr +i needs root and a filesystem with attributes")
    try:
        proc = scaleprof("report", store, "--no-plots")
    finally:
        subprocess.run(["chattr", "-i", target], capture_output=True)
    line = one_line(proc.returncode, proc.stderr, 1, "Operation not permitted")
    assert f"{target}" in line and ".tmp" not in line, line


def test_a_long_search_says_it_is_still_working():
    """`scale` of a huge network takes minutes (efficientnet_b7 d x256: 140 s at load 6.5, most of it
    counting the result): a line every few seconds while it runs, none for a quick one, none with --json."""
    import time

    from scaleprof.tools.args import still_working

    said = []
    with still_working("searching", said.append, every_s=0.05):
        deadline = time.monotonic() + 30          # a loaded machine may wake the watcher late, not never
        while len(said) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(said) >= 3 and said[0].startswith("searching: still working (")
    count = len(said)
    time.sleep(0.2)
    # a body quicker than every_s says nothing (5 s: a descheduled 'pass' never takes that long)
    with still_working("quick", said.append, every_s=5.0):
        pass
    with still_working("json", None, every_s=0.05):
        time.sleep(0.2)
    time.sleep(0.2)
    assert len(said) == count                      # stopped with its body; nothing for the quick or silent ones
