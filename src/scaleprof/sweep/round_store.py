"""The results store's record of interleaved rounds (scaleprof.sweep.rounds): each finished round of a
target's timing, its control medians and /proc evidence, and each point's samples in it. A stopped
sweep resumes from them; the report's figures are pooled from them. Schema version 3 added these
tables (scaleprof.sweep.store_schema.UPGRADES); Store's methods of the same names call these inside its
transactions."""

from __future__ import annotations

import json
import sqlite3
import time

from scaleprof.sweep.rows import BAD, RowDecoder

ROUNDS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    env_key TEXT NOT NULL,
    sweep_id INTEGER,
    idx INTEGER NOT NULL,
    seconds REAL NOT NULL,
    control TEXT NOT NULL,
    control_json TEXT NOT NULL,
    evidence_json TEXT,
    created REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS slices (
    round_id INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
    point_key TEXT NOT NULL,
    samples_json TEXT NOT NULL,
    PRIMARY KEY (round_id, point_key)
)""",
    "CREATE INDEX IF NOT EXISTS rounds_target ON rounds(target, env_key)",
)


def put_round(conn: sqlite3.Connection, target: str, env_key: str, sweep_id: int | None, index: int,
              seconds: float, control: str, control_ms: list[float], evidence: dict | None,
              slices: dict[str, list[float]]) -> None:
    """``control``: the point key of the control network, whose medians are ``control_ms``."""
    cur = conn.execute("INSERT INTO rounds(target, env_key, sweep_id, idx, seconds, control, control_json,"
                       " evidence_json, created) VALUES (?,?,?,?,?,?,?,?,?)",
                       (target, env_key, sweep_id, index, seconds, control, json.dumps(control_ms),
                        None if evidence is None else json.dumps(evidence, sort_keys=True, default=str), time.time()))
    conn.executemany("INSERT INTO slices(round_id, point_key, samples_json) VALUES (?,?,?)",
                     [(cur.lastrowid, key, json.dumps(samples)) for key, samples in slices.items()])


def stored_rounds(conn: sqlite3.Connection, rows: RowDecoder, target: str, env_key: str) -> list[dict]:
    """index, seconds, control (its point key), control_ms, evidence and slices (point key -> samples) of
    each stored round of ``target``, oldest first. A round whose JSON is malformed is left out (a line in
    ``rows.problems``)."""
    out = []
    for r in conn.execute("SELECT * FROM rounds WHERE target=? AND env_key=? ORDER BY idx, id",
                          (target, env_key)).fetchall():
        where = f"round {r['idx']} of target {r['target']!r}"
        control = rows.json(r["control_json"], list, where)
        evidence = rows.json(r["evidence_json"], dict, where) if r["evidence_json"] else None
        slices = {s["point_key"]: rows.json(s["samples_json"], list, where) for s in conn.execute(
            "SELECT point_key, samples_json FROM slices WHERE round_id=?", (r["id"],)).fetchall()}
        if BAD in (control, evidence) or BAD in slices.values():
            continue
        out.append({"index": r["idx"], "seconds": r["seconds"], "control": r["control"], "control_ms": control,
                    "evidence": evidence, "slices": slices})
    return out


def forget_slices(conn: sqlite3.Connection, target: str, env_key: str, point_keys: list[str]) -> None:
    conn.executemany("DELETE FROM slices WHERE point_key=? AND round_id IN "
                     "(SELECT id FROM rounds WHERE target=? AND env_key=?)",
                     [(k, target, env_key) for k in point_keys])
