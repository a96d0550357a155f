"""The results store: schema version, one transaction per point, no duplicates, failures retried."""

from __future__ import annotations

import sqlite3

import pytest

from scaleprof.errors import EnvironmentProblem
from scaleprof.profile.types import LatencyStats, LayerReport
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.store import SCHEMA_VERSION, STORE_NAME, Store, StoreError


def record(key="p1", status="ok", median=3.0, layers=2, **kw):
    rows = [{"name": f"l{i}", "time_ms": 1.0, "mean_ms": 1.0, "op_type": "Conv", "category": "conv", "flops": 1,
             "params": 0, "acts": 1, "onnx_nodes": [f"/n{i}"], "bytes": 7} for i in range(layers)]
    ok = status == "ok"
    return PointResult(point_key=key, target="cpu-ort", env_key="env", status=status, model="m", strategy="d",
                       alpha=None, scale=2.0, resolution=224, batch=1, precision="fp32", backend="ort",
                       device="cpu", flops=10, params=2, acts=5,
                       latency=LatencyStats(median=median, batch=1) if ok else None,
                       layers=LayerReport.from_dict({"layer_sum_ms": float(layers), "end_to_end_ms": median,
                                                     "coverage": 1.0, "profiler": "test", "iterations": 1},
                                                    rows) if ok else None,
                       error=None if ok else "boom", **kw)


def test_store_is_wal_and_versioned(tmp_path):
    with Store(tmp_path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
            str(SCHEMA_VERSION)


def test_point_roundtrip_with_layers(tmp_path):
    with Store(tmp_path) as store:
        assert store.put_point(record())
        [p] = store.points(with_layers=True)
        assert p.latency_ms == 3.0 and p.latency == LatencyStats(median=3.0, batch=1)
        assert [l.name for l in p.layer_rows] == ["l0", "l1"] and p.layers.profiler == "test"
        assert p.layer_rows[0].onnx_nodes == ("/n0",) and p.layer_rows[0].bytes == 7   # extras kept
        assert p == record(row_id=p.row_id)                                    # what was put comes back


def test_no_duplicates_force_replaces_failed_is_retried(tmp_path):
    with Store(tmp_path) as store:
        assert store.put_point(record(status="failed"))
        assert store.measured_keys("cpu-ort", "env") == set()
        assert store.put_point(record(median=4.0))                    # a failed point is retried
        assert not store.put_point(record(median=5.0))                # measured: kept, not duplicated
        assert not store.put_point(record(status="failed"))           # a failure never replaces a measurement
        assert store.put_point(record(median=6.0), force=True)        # --force replaces
        rows = store.points(status=None, with_layers=True)
        assert len(rows) == 1 and rows[0].latency_ms == 6.0 and len(rows[0].layer_rows) == 2
        assert store.conn.execute("SELECT count(*) FROM layers").fetchone()[0] == 2
        assert store.measured_keys("cpu-ort", "env") == {"p1"}
        assert store.measured_keys("cpu-ort", "other-env") == set()   # another environment: not measured


def test_incompatible_version_is_one_line(tmp_path):
    with Store(tmp_path) as store:
        store.put_point(record())
        store.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StoreError) as info:
        Store(tmp_path)
    assert "schema version 99" in str(info.value) and "\n" not in str(info.value)
    con = sqlite3.connect(tmp_path / STORE_NAME)                       # untouched
    assert con.execute("SELECT count(*) FROM points").fetchone()[0] == 1


def test_not_a_store(tmp_path):
    (tmp_path / STORE_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a scaleprof results store"):
        Store(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / STORE_NAME)
    con.execute("CREATE TABLE foo (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a scaleprof results store"):
        Store(other)


def test_missing_store_for_report(tmp_path):
    with pytest.raises(EnvironmentProblem, match="no results store here"):
        Store(tmp_path / "nothing", create=False)


def test_failing_write_rolls_back_the_whole_point(tmp_path):
    """A write failing mid-transaction (disk full) leaves no partial point and the store intact."""
    with Store(tmp_path) as store:
        store.put_point(record("before"))

        class Failing:
            def __init__(self, conn):
                self._conn = conn

            def executemany(self, *a):
                raise sqlite3.OperationalError("database or disk is full")

            def __getattr__(self, name):
                return getattr(self._conn, name)

        real = store.conn
        store.conn = Failing(real)
        with pytest.raises(StoreError, match="disk is full.*points stored before are intact"):
            store.put_point(record("during"))
        store.conn = real
        assert [p.point_key for p in store.points(status=None)] == ["before"]
        assert store.integrity_ok()
        assert store.put_point(record("after"))


def test_a_duplicated_point_keeps_its_newest_row_with_a_note(tmp_path):
    """A store made by something else may hold a point twice (this schema refuses it): the report shows
    the newest row once and says which row it left out."""
    from scaleprof.sweep.rows import RowDecoder

    rows = [{"id": i, "point_key": key, "target": "t", "env_key": "e"} for i, key in ((1, "a"), (2, "b"), (3, "a"))]
    decoder = RowDecoder(tmp_path / "results.sqlite")
    assert [r["id"] for r in decoder.newest_per_point(rows)] == [2, 3]
    assert len(decoder.problems) == 1 and "point row 1 (a [t])" in decoder.problems[0]
