"""The runner with stages that need no runtime: resume, SIGKILL, concurrency, failures, disk full."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sweep.fake_stages import GRID, FakeStages
from scaleprof.errors import EnvironmentProblem
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.executor import MEASURE_STAGES, STAGES
from scaleprof.sweep.runner import dry_run, run_sweep
from scaleprof.sweep.store import STORE_NAME, Store

SCRIPT = Path(__file__).with_name("fake_stages.py")


def config(text=GRID):
    return parse_config(text)


def ok_keys(out):
    con = sqlite3.connect(Path(out) / STORE_NAME, timeout=30)
    try:
        return [r[0] for r in con.execute("SELECT point_key FROM points WHERE status='ok'")]
    except sqlite3.OperationalError:      # polled before the first sweep created the schema
        return []
    finally:
        con.close()


def test_sweep_measures_every_point_once_and_resumes(tmp_path):
    stages = FakeStages()
    result = run_sweep(config(), tmp_path, stages=stages, progress=False, log=lambda m: None)
    assert (result.total, result.measured, result.failed, result.skipped) == (30, 30, 0, 0)
    # s = 1 is the same network for every strategy: timed once per batch size, stored for each point
    assert result.reused == 8 and stages.calls["time"] == 22
    assert stages.calls["export"] == 11 and stages.calls["build"] == 11     # one engine per spec, both batches
    again = FakeStages()
    result = run_sweep(config(), tmp_path, stages=again, progress=False, log=lambda m: None)
    assert (result.measured, result.skipped) == (0, 30) and again.calls["time"] == 0
    forced = run_sweep(config(), tmp_path, stages=FakeStages(), progress=False, force=True, log=lambda m: None)
    assert forced.measured == 30
    keys = ok_keys(tmp_path)
    assert len(keys) == 30 == len(set(keys))
    with Store(tmp_path) as store:
        assert store.integrity_ok()
        p = store.points(with_layers=True)[0]
        assert len(p.layer_rows) == 4 and p.layers.profiler == "fake"
        assert set(p.stage_seconds) >= {"scale", "count", "export", "build", "time", "roofline", "layers"}


def test_every_stage_is_timed_under_its_own_name(tmp_path):
    result = run_sweep(config(), tmp_path, stages=FakeStages(), progress=False, log=lambda m: None)
    assert set(result.stage_seconds) == set(STAGES)            # roofline calibration apart from counting
    assert set(MEASURE_STAGES) == {"time", "layers"}
    assert result.measurement_seconds == sum(result.stage_seconds[s] for s in MEASURE_STAGES)
    assert 0.0 <= result.overhead_share < 1.0


def test_a_failing_roofline_is_reported_as_its_own_stage(tmp_path):
    result = run_sweep(config(), tmp_path, stages=FakeStages(fail_roofline=True), progress=False,
                       log=lambda m: None)
    assert result.failed == 30 and result.measured == 0
    assert all(message.startswith("roofline: RuntimeError: no peaks on this fake device [fake_stages.py:")
               for _, message in result.failures)


def test_failures_are_isolated_recorded_and_retried(tmp_path):
    result = run_sweep(config(), tmp_path, stages=FakeStages(fail_strategies=("w",)), progress=False,
                       log=lambda m: None)
    assert result.failed == 4 and result.measured == 26          # w x2, w x4 at batch 1 and 2
    with Store(tmp_path) as store:
        failed = store.points("failed")
        assert {f.strategy for f in failed} == {"w"}
        assert all(f.error.startswith("export: RuntimeError: cannot export <w> & friends") for f in failed)
    result = run_sweep(config(), tmp_path, stages=FakeStages(), progress=False, log=lambda m: None)
    assert (result.measured, result.skipped, result.failed) == (4, 26, 0)
    with Store(tmp_path) as store:
        assert store.counts() == {"ok": 30}


def test_missing_backend_stops_before_anything_runs(tmp_path):
    text = GRID.replace("[cpu-ort]", "[cpu-ort, {name: gpu, backend: tensorrt, device: cuda}]")
    with pytest.raises(EnvironmentProblem, match="target 'gpu': backend 'tensorrt'"):
        run_sweep(config(text), tmp_path, stages=FakeStages(missing_backends=("tensorrt",)), progress=False)
    assert not (tmp_path / STORE_NAME).exists()


def test_dry_run_lists_points_with_counts_and_status(tmp_path):
    rows = dry_run(config(), tmp_path, stages=FakeStages())
    assert len(rows) == 30 and all(r["status"] == "to do" for r in rows)
    assert rows[0]["flops"] > 0 and not (tmp_path / STORE_NAME).exists()
    run_sweep(config(), tmp_path, stages=FakeStages(), progress=False, log=lambda m: None)
    assert {r["status"] for r in dry_run(config(), tmp_path, stages=FakeStages())} == {"measured"}


def _write_config(tmp_path, text=GRID):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def _fake_sweep(cfg, out, *extra, **kw):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(cfg), str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_mid_sweep_then_rerun_measures_every_point_exactly_once(tmp_path):
    cfg = _write_config(tmp_path)
    out = tmp_path / "out"
    proc = _fake_sweep(cfg, out, "--delay", "0.2")
    deadline = time.time() + 60
    while time.time() < deadline:
        if (out / STORE_NAME).exists() and len(ok_keys(out)) >= 6:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    killed_at = ok_keys(out)
    assert 6 <= len(killed_at) < 30, "the sweep was not killed in the middle"

    proc = _fake_sweep(cfg, out)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {"measured": 30 - len(killed_at), "skipped": len(killed_at), "failed": 0}
    keys = ok_keys(out)
    assert len(keys) == 30 and len(set(keys)) == 30 and set(killed_at) <= set(keys)
    with Store(out) as store:
        assert store.integrity_ok()
        per_sweep = dict(store.conn.execute("SELECT sweep_id, count(*) FROM points GROUP BY sweep_id").fetchall())
        assert per_sweep == {1: len(killed_at), 2: 30 - len(killed_at)}
        assert store.conn.execute("SELECT count(*) FROM layers").fetchone()[0] == 4 * 30   # no orphans


def test_two_concurrent_sweeps_on_one_store(tmp_path):
    cfg = _write_config(tmp_path)
    out = tmp_path / "out"
    procs = [_fake_sweep(cfg, out, "--delay", "0.05") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    keys = ok_keys(out)
    assert len(keys) == 30 == len(set(keys))
    with Store(out) as store:
        assert store.integrity_ok()
        assert store.conn.execute("SELECT count(*) FROM layers").fetchone()[0] == 4 * 30
        assert len(store.sweeps()) == 2


def test_a_store_another_sweep_is_opening_is_opened_once_it_can_be(tmp_path, monkeypatch):
    """Two sweeps opening one store at the same instant: SQLite may answer 'database is locked' at once,
    without its busy wait (one run in ~50 on one loaded core here); the open is tried again, within the
    busy timeout, and an open that stays locked past it is one error naming the store."""
    import scaleprof.sweep.store as store_module

    real, tries = Store._connect, []

    def locked(self, times):
        tries.append(1)
        if len(tries) <= times:
            self.conn = sqlite3.connect(":memory:")           # what a failed open leaves behind, closed again
            raise sqlite3.OperationalError("database is locked")
        real(self)

    monkeypatch.setattr(Store, "_connect", lambda self: locked(self, 2))
    with Store(tmp_path) as store:
        assert store.integrity_ok() and len(tries) == 3
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(Store, "_connect", lambda self: locked(self, 10 ** 9))
    with pytest.raises(EnvironmentProblem, match="results.sqlite: results store error \\(database is locked\\)"):
        Store(tmp_path / "other")


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE (Linux)")
def test_disk_full_while_writing_is_one_line_and_the_store_stays_intact(tmp_path):
    """A real failing write: the sweep process may not grow any file past a few KB beyond the store."""
    import resource

    out = tmp_path / "out"
    small = GRID.replace("batch_sizes: [1, 2]", "batch_sizes: [1]").replace("[d, w, r, dwr, dWr]", "[d]")
    run_sweep(config(small), out, stages=FakeStages(), progress=False, log=lambda m: None)
    before = sorted(ok_keys(out))
    limit = max(f.stat().st_size for f in out.iterdir()) + 24 * 1024
    big = GRID.replace("batch_sizes: [1, 2]", "batch_sizes: [1, 2, 4, 8, 16, 32, 64]")
    cfg = _write_config(tmp_path, big)

    def limit_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = _fake_sweep(cfg, out, preexec_fn=limit_files)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, (stdout, stderr)
    lines = [l for l in stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "cannot write the results store" in lines[0], stderr
    assert "points stored before are intact" in lines[0]
    assert "Traceback" not in stderr
    with Store(out) as store:
        assert store.integrity_ok()
        keys = [p.point_key for p in store.points()]
        assert set(before) <= set(keys) and len(keys) == len(set(keys))
        # every stored point is whole: each has its 4 layer rows
        assert store.conn.execute("SELECT count(*) FROM layers").fetchone()[0] == 4 * len(keys)
