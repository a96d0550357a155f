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


def snapshot(root: Path) -> dict:
    """Every file under ``root``: its size and content hash (stores by their logical content)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm")):
            out[str(path.relative_to(root))] = (dump_store(path) if path.suffix == ".sqlite"
                                                else hashlib.sha256(path.read_bytes()).hexdigest())
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
