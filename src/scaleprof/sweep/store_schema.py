"""The results store's schema: the tables of a new store, the older versions this scaleprof reads
and what brings one of them up to date.

The schema is versioned (``meta.schema_version``); a store from an unknown version is refused with
one line, never migrated silently or overwritten. A store of an older version this scaleprof knows
(``UPGRADES``) is read as it is; a sweep that writes into it first adds the columns it lacks
(additions only, inside the transaction that opens it). scaleprof.sweep.store opens the connection
and calls ``open_schema`` in that transaction.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from scaleprof.errors import EnvironmentProblem
from scaleprof.sweep.result import LATENCY_MS
from scaleprof.sweep.round_store import ROUNDS_SCHEMA

SCHEMA_VERSION = 4
# version -> the statements that bring a store of that version to the next one (additions only)
UPGRADES = {
    1: ("ALTER TABLE points ADD COLUMN layer_count INTEGER",       # layers executed (Counts.layer_count)
        "ALTER TABLE points ADD COLUMN contention_json TEXT"),    # what other processes took while timing
    2: ROUNDS_SCHEMA,
    3: ("ALTER TABLE points ADD COLUMN flavour TEXT",),             # int8: the file's activation type
}

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    config_json TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS environments (
    env_key TEXT NOT NULL,
    target TEXT NOT NULL,
    target_json TEXT NOT NULL,
    env_json TEXT NOT NULL,
    PRIMARY KEY (env_key, target)
);
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    point_key TEXT NOT NULL,
    target TEXT NOT NULL,
    env_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    sweep_id INTEGER,
    model TEXT NOT NULL,
    strategy TEXT NOT NULL,
    alpha REAL,
    scale REAL NOT NULL,
    resolution INTEGER,
    resolution_requested TEXT NOT NULL DEFAULT 'auto',
    batch INTEGER NOT NULL,
    precision TEXT NOT NULL,
    flavour TEXT,
    backend TEXT NOT NULL,
    device TEXT NOT NULL,
    spec_json TEXT,
    flops INTEGER,
    params INTEGER,
    acts INTEGER,
    layer_count INTEGER,
    engine_key TEXT,
    latency_json TEXT,
    {latency} REAL,
    throughput REAL,
    layer_summary_json TEXT,
    stage_seconds_json TEXT,
    error TEXT,
    created REAL NOT NULL,
    contention_json TEXT,
    UNIQUE (point_key, target, env_key)
);
CREATE TABLE IF NOT EXISTS layers (
    point_id INTEGER NOT NULL REFERENCES points(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    onnx_nodes_json TEXT NOT NULL,
    op_type TEXT NOT NULL,
    category TEXT NOT NULL,
    time_ms REAL NOT NULL,
    mean_ms REAL NOT NULL,
    flops INTEGER NOT NULL,
    params INTEGER NOT NULL,
    acts INTEGER NOT NULL,
    opaque INTEGER NOT NULL DEFAULT 0,
    extras_json TEXT,
    PRIMARY KEY (point_id, idx)
);
CREATE INDEX IF NOT EXISTS points_target ON points(target, status);
""".format(latency=LATENCY_MS)


class StoreError(EnvironmentProblem):
    pass


def open_schema(conn: sqlite3.Connection, path: Path, writable: bool) -> tuple[int, int | None]:
    """Inside an open transaction: create the tables of an empty file, or check the version of a
    store (bringing an older one up to date when ``writable``). Returns (the version the store now
    has, the version it was upgraded from or None)."""
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if has_meta:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else None
        if version != SCHEMA_VERSION and version not in UPGRADES:
            raise StoreError(
                f"{path}: results store schema version {version} is not a version "
                f"this scaleprof reads ({', '.join(map(str, (*UPGRADES, SCHEMA_VERSION)))}); "
                "use another output directory or the scaleprof version that wrote it")
        if version != SCHEMA_VERSION and writable:
            _upgrade(conn, version)
            return SCHEMA_VERSION, version
        return version, None
    if tables:
        raise StoreError(f"{path}: an SQLite file that is not a scaleprof results store; "
                         "use another output directory")
    for statement in [*TABLES.split(";"), *ROUNDS_SCHEMA]:
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.execute("INSERT INTO meta(key, value) VALUES ('created', ?)", (str(time.time()),))
    return SCHEMA_VERSION, None


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring a store of an older ``version`` to SCHEMA_VERSION by adding what it lacks."""
    upgraded_from = version
    while version != SCHEMA_VERSION:
        for statement in UPGRADES[version]:
            conn.execute(statement)
        version += 1
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                 (f"upgraded_from_{upgraded_from}", str(time.time())))
