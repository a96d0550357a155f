"""A sweep's timing in interleaved rounds, with stages that need no runtime (RoundStages): every
round times every ready point of the target, a scripted neighbour is discarded by the control, a
killed sweep resumes from its stored rounds, engines stay within a memory budget."""

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

from tests.sweep.fake_stages import GRID, ROUND_TIMING, RoundStages
from scaleprof.sweep import rounds as sweep_rounds
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.runner import run_sweep
from scaleprof.sweep.store import STORE_NAME, Store

SCRIPT = Path(__file__).with_name("fake_stages.py")
TIMED_KEYS = 22          # 30 points; s = 1 is one network under the five strategies, at two batch sizes


class QuietWatch:
    """What /proc would say on a quiet machine (this test machine is shared, so it is scripted)."""

    result = {"other_share": 0.01, "other_cores": 0.02, "cores": 2, "flagged": False}

    def __init__(self, device="cpu"):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class BusyWatch(QuietWatch):
    result = {"other_share": 0.95, "other_cores": 1.9, "cores": 2, "flagged": True}


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(sweep_rounds, "ContentionWatch", QuietWatch)


def _sweep(out, stages, **kw):
    return run_sweep(parse_config(GRID + ROUND_TIMING), out, stages=stages, progress=False, log=lambda m: None, **kw)


def _slice_orders(out) -> list[list[str]]:
    con = sqlite3.connect(Path(out) / STORE_NAME, timeout=30)
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM rounds ORDER BY id")]
        return [[r[0] for r in con.execute("SELECT point_key FROM slices WHERE round_id=? ORDER BY rowid", (i,))]
                for i in ids]
    except sqlite3.OperationalError:      # polled before the sweep created the schema
        return []
    finally:
        con.close()


def test_every_round_times_every_ready_point_in_a_shuffled_order(tmp_path, quiet):
    stages = RoundStages()
    result = _sweep(tmp_path, stages)
    assert (result.measured, result.failed) == (30, 0)
    orders = _slice_orders(tmp_path)
    assert len(orders) == 3 and all(len(o) == TIMED_KEYS for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    with Store(tmp_path) as store:
        points = store.points()
    for p in points:
        engine = {"spec": stages.spec(_point(p))}
        assert p.latency_ms == pytest.approx(stages.median_ms(engine, p.batch, p.resolution))
        assert p.latency.rounds == {"kept": 3, "discarded": 0, "contended": False, "reason": ""}


def test_a_neighbour_during_one_round_is_discarded_and_the_round_repeated(tmp_path, quiet):
    stages = RoundStages(slow_calls=((1000, 3000),))      # about the second round
    _sweep(tmp_path, stages)
    with Store(tmp_path) as store:
        points = store.points()
    assert len(_slice_orders(tmp_path)) > 3
    assert sum(p.latency.rounds["discarded"] for p in points) > 0
    for p in points:
        engine = {"spec": stages.spec(_point(p))}
        true = stages.median_ms(engine, p.batch, p.resolution)
        assert p.latency.max == pytest.approx(true)          # no slowed sample in any figure
        assert p.latency.rounds["kept"] == 3 and not p.latency.rounds["contended"]


def test_a_neighbour_throughout_leaves_every_point_contended(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_rounds, "ContentionWatch", BusyWatch)
    _sweep(tmp_path, RoundStages())
    with Store(tmp_path) as store:
        points = store.points()
        assert store.contended_keys("cpu-ort", points[0].env_key) == {p.point_key for p in points}
    assert all(p.latency.rounds["contended"] and "every round" in p.latency.rounds["reason"]
               for p in points)


def test_engines_stay_within_the_memory_budget(tmp_path, quiet, monkeypatch):
    monkeypatch.setattr(sweep_rounds, "_memory_budget", lambda: 1)      # room for one engine at a time
    stages = RoundStages()
    result = _sweep(tmp_path, stages)
    assert result.measured == 30
    assert max(stages.loaded.values()) >= 3        # released after its slice, loaded again next round


def test_a_killed_sweep_loses_at_most_the_round_in_flight(tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(GRID + ROUND_TIMING.replace("rounds: 3", "rounds: 6"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(config), str(out), "--rounds", "0.002"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    stored = 0
    deadline = time.time() + 120
    while stored < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        stored = len(_slice_orders(out)) if (out / STORE_NAME).exists() else 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _slice_orders(out)
    assert len(before) >= 2, "the sweep stored no round before it was killed"
    done = subprocess.run([sys.executable, str(SCRIPT), str(config), str(out), "--rounds", "0.002"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["measured"] == 30 and "resuming from" in done.stderr
    after = _slice_orders(out)
    assert after[:len(before)] == before                 # the finished rounds were kept and pooled
    with Store(out) as store:
        kept = {p.latency.rounds["kept"] + p.latency.rounds["discarded"] for p in store.points()}
    # a point's rounds: those of the killed run plus the resumed ones, not the resumed ones alone
    assert len(after) - len(before) < 6 or min(kept) > len(after) - len(before)


def _point(row):
    from scaleprof.sweep.config import Point

    return Point(row.model, row.strategy, row.alpha, row.scale, None, row.batch, row.precision, row.target)


def test_a_version_2_store_gets_its_rounds_tables_from_the_sweep_that_writes_into_it(tmp_path, quiet):
    _sweep(tmp_path, RoundStages())
    con = sqlite3.connect(tmp_path / STORE_NAME)
    con.execute("DROP TABLE slices")
    con.execute("DROP TABLE rounds")
    con.execute("ALTER TABLE points DROP COLUMN flavour")          # a version 2 store had none
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.commit()
    con.close()
    with Store(tmp_path, create=False) as store:
        assert store.version == 2 and store.rounds("cpu-ort", "fakeenvort") == []
    messages = []
    run_sweep(parse_config(GRID + ROUND_TIMING), tmp_path, stages=RoundStages(), progress=False,
              log=messages.append, force=True)
    assert any("schema 2 upgraded to 4" in m for m in messages)
    assert len(_slice_orders(tmp_path)) >= 3


def test_a_neighbour_throughout_ends_the_sweep_with_one_line_and_no_verdict(tmp_path, monkeypatch, capsys):
    from scaleprof.report import write_report
    from scaleprof.tools.args import print_report_paths

    monkeypatch.setattr(sweep_rounds, "ContentionWatch", BusyWatch)
    _sweep(tmp_path, RoundStages())
    print_report_paths(write_report(tmp_path, plots=False))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("scaleprof could not measure faithfully on this machine: other processes took 95%")
    assert not any("predicts latency best" in line for line in lines)
    assert all("no verdict" in line for line in lines if line.startswith("On cpu-ort"))


def test_without_the_base_network_the_smallest_network_is_the_control(tmp_path, quiet):
    stages = RoundStages()
    grid = GRID.replace("scales: [1, 2, 4]", "scales: [2, 4]").replace("batch_sizes: [1, 2]", "batch_sizes: [2]")
    messages = []
    result = run_sweep(parse_config(grid + ROUND_TIMING), tmp_path, stages=stages, progress=False, log=messages.append)
    assert result.measured == 10 and result.failed == 0
    assert stages.calls["build"] == 10                  # no engine built for the control
    with Store(tmp_path) as store:
        [control] = {r["control"] for r in store.rounds("cpu-ort", "fakeenvort")}
        points = {p.point_key: p for p in store.points()}
    assert all(not p.contended and p.latency.rounds["kept"] == 3 for p in points.values())
    assert points[control].flops == min(p.flops for p in points.values())
    assert any(f"with {points[control].model} " in m and "as the control network" in m for m in messages)


def test_a_failing_network_fails_alone_and_a_failing_control_fails_its_target(tmp_path, quiet):
    result = _sweep(tmp_path / "one", RoundStages(broken_scales=(4.0,)))
    assert (result.measured, result.failed) == (20, 10)
    assert all("time: RuntimeError: runner of x4 broke" in error for _, error in result.failures)
    result = _sweep(tmp_path / "control", RoundStages(broken_scales=(1.0,)))
    assert (result.measured, result.failed) == (0, 30)
    errors = [error for _, error in result.failures]
    assert sum("time: RuntimeError: control network: runner of x1 broke" in e for e in errors) == 22
    assert sum("time: RuntimeError: the same network at this shape failed in another point" in e for e in errors) == 8


@pytest.mark.parametrize("setting, words", [
    ("rounds: 0", "timing.rounds: 0 must be positive"),
    ("control_tolerance: 0", "timing.control_tolerance: 0 must be positive"),
    ("retry_budget_s: -1", "timing.retry_budget_s: -1 must be zero or more"),
    ("rounds: 2.5", "timing.rounds: expected an integer"),
])
def test_round_settings_are_checked_in_one_line(setting, words):
    from scaleprof.errors import BadInput

    with pytest.raises(BadInput, match=words):
        parse_config(GRID + f"timing: {{{setting}}}\n")
