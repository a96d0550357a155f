"""What a sweep stores besides the latency: the layer count, the contention a timing saw, and re-timing
the contended points; stores of the previous schema stay readable and are upgraded by a sweep."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace

import pytest

from tests.sweep.fake_stages import FakeCounts, FakeStages
from scaleprof.errors import BadInput
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.runner import run_sweep
from scaleprof.sweep.store import SCHEMA_VERSION, STORE_NAME, Store

GRID = """
name: truth
models: [efficientnet_b0]
strategies: [d, w]
scales: [1, 2]
batch_sizes: [1]
targets: [cpu-ort]
"""


@dataclass(frozen=True)
class LayeredCounts(FakeCounts):
    layer_count: int = 0


@dataclass
class NeighbourStages(FakeStages):
    """FakeStages whose counts have a layer count (depth doubles it) and whose timings of the
    ``busy`` strategies were taken next to a busy neighbour."""

    busy: tuple = ()

    def count(self, spec, resolution):
        c = super().count(spec, resolution)
        layers = 189 * (2 if spec.strategy == "d" and spec.scale == 2 else 1)
        return LayeredCounts(c.flops, c.params, c.acts, layers)

    def time(self, engine, batch, resolution, timing):
        latency = super().time(engine, batch, resolution, timing)
        busy = engine["spec"].strategy in self.busy and engine["spec"].scale != 1
        share = 0.6 if busy else 0.01
        return replace(latency, contention={
            "wall_s": 1.0, "cores": 2, "other_cpu_s": 2 * share, "own_cpu_s": 1.0, "steal_s": 0.0, "load_start": 1.0,
            "load_end": 1.0, "threshold": 0.1, "gpu": {}, "other_cores": 2 * share, "other_share": share,
            "flagged": busy})


def _run(out, stages, **kw):
    return run_sweep(parse_config(GRID), out, stages=stages, progress=False, log=lambda m: None, **kw)


def test_points_store_layer_count_and_contention(tmp_path):
    _run(tmp_path, NeighbourStages(busy=("w",)))
    with Store(tmp_path, create=False) as store:
        points = {(p.strategy, p.scale): p for p in store.points()}
        [stored] = store.conn.execute("SELECT latency_json FROM points WHERE strategy='w' AND scale=2").fetchone()
    assert points[("d", 2.0)].layer_count == 378 and points[("w", 2.0)].layer_count == 189
    assert points[("w", 2.0)].contended and not points[("d", 2.0)].contended
    assert "contention" not in json.loads(stored)                    # one place: its own column


def test_remeasure_noisy_times_only_the_flagged_points_again(tmp_path):
    _run(tmp_path, NeighbourStages(busy=("w",)))
    quiet = NeighbourStages()
    result = _run(tmp_path, quiet, remeasure_noisy=True)
    assert result.measured == 1 and result.skipped == 3 and quiet.calls["time"] == 1
    with Store(tmp_path, create=False) as store:
        assert store.contended_keys("cpu-ort", "fakeenvort") == set()
        assert len(store.points()) == 4
    again = NeighbourStages()
    assert _run(tmp_path, again, remeasure_noisy=True).measured == 0 and again.calls["time"] == 0


def test_wait_quiet_reaches_the_timing_settings():
    from scaleprof.tools.args import with_wait_quiet

    config = parse_config(GRID + "timing: {wait_quiet_s: 5}\n")
    assert config.timing.wait_quiet_s == 5.0
    assert with_wait_quiet(config, None) is config
    assert with_wait_quiet(config, 30).timing.wait_quiet_s == 30.0
    with pytest.raises(BadInput, match="--wait-quiet"):
        with_wait_quiet(config, -1.0)


def _as_version_1(directory) -> None:
    """Turn a store into what schema version 1 wrote: no layer_count, contention_json, flavour, rounds."""
    con = sqlite3.connect(directory / STORE_NAME)
    con.execute("DROP TABLE slices")
    con.execute("DROP TABLE rounds")
    con.execute("ALTER TABLE points DROP COLUMN layer_count")
    con.execute("ALTER TABLE points DROP COLUMN contention_json")
    con.execute("ALTER TABLE points DROP COLUMN flavour")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()


def _version(directory) -> str:
    con = sqlite3.connect(directory / STORE_NAME)
    try:
        return con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    finally:
        con.close()


def test_a_version_1_store_is_read_as_it_is_and_a_sweep_upgrades_it(tmp_path):
    _run(tmp_path, NeighbourStages())
    _as_version_1(tmp_path)
    with Store(tmp_path, create=False) as store:                    # reading (report, dry run)
        old = store.points()
        assert store.version == 1 and len(old) == 4
        assert all(p.layer_count is None and p.contention is None for p in old)
    assert _version(tmp_path) == "1"                                 # untouched by reading
    messages = []
    grid = GRID.replace("scales: [1, 2]", "scales: [1, 2, 4]")
    result = run_sweep(parse_config(grid), tmp_path, stages=NeighbourStages(), progress=False, log=messages.append)
    assert result.measured == 2 and result.skipped == 4
    assert any(f"schema 1 upgraded to {SCHEMA_VERSION}" in m for m in messages)
    assert _version(tmp_path) == str(SCHEMA_VERSION)
    with Store(tmp_path) as store:
        points = store.points()
    assert sum(p.layer_count is None for p in points) == 4 and sum(p.layer_count == 189 for p in points) >= 1


def test_the_report_of_a_version_1_store(tmp_path):
    from scaleprof.report import write_report

    _run(tmp_path, NeighbourStages())
    _as_version_1(tmp_path)
    paths = write_report(tmp_path, plots=False)
    assert paths.points == 4 and _version(tmp_path) == "1"
    predictors = paths.markdown.read_text().split("## Which metric predicts latency")[1].split("\n## ")[0]
    assert "| acts |" in predictors and "| layers |" not in predictors      # not recorded: no row
    assert all("layers" not in v for v in paths.verdicts)


def test_the_report_flags_points_measured_under_contention(tmp_path):
    import csv

    from scaleprof.report import write_report

    _run(tmp_path, NeighbourStages(busy=("w",)))
    paths = write_report(tmp_path, plots=False)
    text = paths.markdown.read_text()
    assert "Contention: 1 of 4 point(s) could not be measured faithfully" in text
    assert "Verdict from 3 of 4 points; 1 contended: efficientnet\\_b0 w x2" in text
    section = text.split("## Measured under contention")[1].split("\n## ")[0]
    assert "efficientnet\\_b0 w x2" in section and "1.20 of 2" in section and "efficientnet\\_b0 d x2" not in section
    with open(paths.csv) as f:
        rows = {(r["strategy"], r["scale"]): r for r in csv.DictReader(f)}
    assert rows[("w", "2.0")]["contended"] == "True" and rows[("d", "2.0")]["contended"] == "False"
    assert rows[("d", "2.0")]["layer_count"] == "378" and rows[("w", "2.0")]["other_cores"] == "1.2"
    quiet = tmp_path / "quiet"
    _run(quiet, NeighbourStages())
    assert "## Measured under contention" not in write_report(quiet, plots=False).markdown.read_text()
