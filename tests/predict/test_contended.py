"""Calibration leaves out the points that could not be measured faithfully (a contended latency
would carry its error into every prediction)."""

import json
import sqlite3

import pytest

from scaleprof.errors import BadInput
from scaleprof.predict.sweep_calibration import calibrate_source
from scaleprof.sweep.store import STORE_NAME
from tests.predict.synthetic import fill_store, seed_caches

STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr")


def _contend(directory, keys) -> None:
    """Mark these points as timed in rounds and contended, their latency three times too slow."""
    con = sqlite3.connect(directory / STORE_NAME)
    for key, latency in con.execute("SELECT point_key, latency_json FROM points").fetchall():
        if key in keys:
            data = json.loads(latency)
            data.update(median=3 * data["median"],
                        rounds={"kept": 1, "discarded": 5, "contended": True, "reason": "1 of 6 rounds quiet"})
            con.execute("UPDATE points SET latency_json=?, latency_ms_median=? WHERE point_key=?",
                        (json.dumps(data), data["median"], key))
    con.commit()
    con.close()


def test_calibration_leaves_contended_points_out(tmp_path, user_cache):
    seed_caches(STRATEGIES, (1, 2, 4))
    fill_store(tmp_path)
    _contend(tmp_path, {"w|4", "dwr|4"})
    [cal] = calibrate_source(tmp_path, with_evaluation=False)
    used = {tuple(p["label"].split()[1:3]) for p in cal.points}
    assert ("w", "x4") not in used and ("dwr", "x4") not in used
    assert ("dw", "x4") in used and ("w", "x2") in used


def test_nothing_to_calibrate_from_when_every_point_is_contended(tmp_path, user_cache):
    seed_caches(STRATEGIES, (1, 2, 4))
    fill_store(tmp_path, strategies=("d",))
    _contend(tmp_path, {"d|1", "d|2", "d|4"})
    with pytest.raises(BadInput, match="measured under contention"):
        calibrate_source(tmp_path, with_evaluation=False)
