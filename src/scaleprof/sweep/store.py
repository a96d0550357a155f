"""The results store: one SQLite database per output directory (standard library sqlite3).

- WAL journal, a busy timeout, one transaction per point: a point is either fully stored
  (its row, its per-layer rows, its environment) or not at all, whatever kills the process.
- A point is identified by (point_key, target, env_key). Re-running a sweep skips points whose
  identity already has an ``ok`` row; a failed point is retried and its row replaced;
  ``--force`` replaces measured rows too. The UNIQUE constraint makes duplicates impossible,
  even when two sweeps write to one store at once.
- The schema is versioned (``meta.schema_version``); a store from an unknown version is refused
  with one line, never migrated silently or overwritten. A store of an older version this
  scaleprof knows (``UPGRADES``) is read as it is; a sweep that writes into it first adds the
  columns it lacks (additions only, in one transaction, ``upgraded_from`` says so), and its old
  points read back with those columns empty (None).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from scaleprof.core.files import check_replaceable
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.sweep.config import definition, describe_definition
from scaleprof.profile.types import LatencyStats, LayerReport, point_contended
from scaleprof.sweep.result import LATENCY_MS, PointResult
from scaleprof.sweep.round_store import ROUNDS_SCHEMA, forget_slices, put_round, stored_rounds
from scaleprof.sweep.rows import BAD, RowDecoder

SCHEMA_VERSION = 4
STORE_NAME = "results.sqlite"
# version -> the statements that bring a store of that version to the next one (additions only)
UPGRADES = {
    1: ("ALTER TABLE points ADD COLUMN layer_count INTEGER",       # layers executed (Counts.layer_count)
        "ALTER TABLE points ADD COLUMN contention_json TEXT"),    # what other processes took while timing
    2: ROUNDS_SCHEMA,
    3: ("ALTER TABLE points ADD COLUMN flavour TEXT",),             # int8: the file's activation type
}

_SCHEMA = """
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


def _disk_problem(path: Path, err: Exception) -> StoreError:
    text = str(err)
    if "full" in text or "disk" in text.lower() or "I/O" in text:
        return StoreError(f"{path}: cannot write the results store ({text}); "
                          "nothing of the failed point was kept, the points stored before are intact")
    return StoreError(f"{path}: results store error ({text})")


class Store:
    """Open (creating if needed) ``DIR/results.sqlite``. Use as a context manager or call close()."""

    def __init__(self, directory: str | Path, create: bool = True):
        """``create`` False: only read an existing store (an older version is then left as it is)."""
        self.directory = Path(directory)
        self.path = self.directory / STORE_NAME
        self.rows = RowDecoder(self.path)  # .problems: the rows left out while reading, one line each
        self.version = SCHEMA_VERSION
        self.upgraded_from: int | None = None
        self._writable = create
        if not self.path.exists() and not create:
            raise EnvironmentProblem(f"{self.directory}: no results store here ({STORE_NAME}); "
                                     "run `scaleprof sweep CONFIG -o DIR` first")
        check_replaceable(self.path)        # a directory, device, FIFO or link there is not a store
        if not create and self.path.stat().st_size == 0:
            raise BadInput(f"{self.path}: an empty file, not a scaleprof results store; nothing was written "
                           "to it")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise EnvironmentProblem(f"{self.directory}: cannot create the output directory "
                                     f"({err.strerror or err})") from None
        try:
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 60000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._init_schema()
        except StoreError:
            self.close()
            raise
        except sqlite3.DatabaseError as err:
            self.close()
            if "not a database" in str(err) or "malformed" in str(err):
                raise StoreError(f"{self.path}: not a scaleprof results store ({err}); "
                                 "use another output directory") from None
            raise _disk_problem(self.path, err) from None

    # ------------------------------------------------------------------ schema
    def _init_schema(self) -> None:
        with self.transaction() as conn:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if has_meta:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
                if version != SCHEMA_VERSION and version not in UPGRADES:
                    raise StoreError(
                        f"{self.path}: results store schema version {version} is not a version "
                        f"this scaleprof reads ({', '.join(map(str, (*UPGRADES, SCHEMA_VERSION)))}); "
                        "use another output directory or the scaleprof version that wrote it")
                self.version = version
                if version != SCHEMA_VERSION and self._writable:
                    self._upgrade(conn, version)
                return
            if tables:
                raise StoreError(f"{self.path}: an SQLite file that is not a scaleprof results store; "
                                 "use another output directory")
            for statement in [*_SCHEMA.split(";"), *ROUNDS_SCHEMA]:
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("INSERT INTO meta(key, value) VALUES ('created', ?)", (str(time.time()),))

    def _upgrade(self, conn: sqlite3.Connection, version: int) -> None:
        """Bring an older store to SCHEMA_VERSION by adding what it lacks (inside the open transaction)."""
        self.upgraded_from = version
        while version != SCHEMA_VERSION:
            for statement in UPGRADES[version]:
                conn.execute(statement)
            version += 1
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                     (f"upgraded_from_{self.upgraded_from}", str(time.time())))
        self.version = SCHEMA_VERSION

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as err:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise _disk_problem(self.path, err) from None

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ sweeps & environments
    def begin_sweep(self, name: str, config: dict) -> int:
        with self._writing() as conn:
            cur = conn.execute("INSERT INTO sweeps(name, config_json, started) VALUES (?, ?, ?)",
                               (name, json.dumps(config, sort_keys=True), time.time()))
            return cur.lastrowid

    def end_sweep(self, sweep_id: int) -> None:
        with self._writing() as conn:
            conn.execute("UPDATE sweeps SET finished=? WHERE id=?", (time.time(), sweep_id))

    def check_targets(self, targets: list[dict]) -> None:
        """A target name stands for one definition in a store: BadInput when points were stored for a
        target of one of these names defined otherwise (its backend, device, threads or options), so
        that no result is attributed to settings it was not measured with."""
        for target in targets:
            rows = self.conn.execute(
                "SELECT DISTINCT e.target_json FROM environments e WHERE e.target=? AND EXISTS "
                "(SELECT 1 FROM points p WHERE p.target=e.target AND p.env_key=e.env_key)",
                (target["name"],)).fetchall()
            for (stored,) in rows:
                stored = self.rows.json(stored, dict, "")
                if definition(stored) != definition(target):
                    raise BadInput(
                        f"target {target['name']!r}: {self.path} holds points measured with another definition "
                        f"of it ({describe_definition(stored)}; now {describe_definition(target)}): give the "
                        "new definition its own name, or use another output directory")

    def put_environment(self, env_key: str, target: dict, environment: dict) -> None:
        self.check_targets([target])
        with self._writing() as conn:
            conn.execute("INSERT OR REPLACE INTO environments(env_key, target, target_json, env_json) "
                         "VALUES (?, ?, ?, ?)",
                         (env_key, target["name"], json.dumps(target, sort_keys=True),
                          json.dumps(environment, sort_keys=True, default=str)))

    def environments(self) -> list[dict]:
        rows = self.conn.execute("SELECT * FROM environments ORDER BY target, env_key").fetchall()
        out = []
        for r in rows:
            where = f"environment {r['env_key']!r} of target {r['target']!r}"
            target, env = self.rows.json(r["target_json"], dict, where), self.rows.json(r["env_json"], dict, where)
            if target is not BAD and env is not BAD:
                out.append({"env_key": r["env_key"], "target": target, "environment": env})
        return out

    def sweeps(self) -> list[dict]:
        rows = self.conn.execute("SELECT * FROM sweeps ORDER BY id").fetchall()
        out = []
        for r in rows:
            config = self.rows.json(r["config_json"], dict, f"sweep row {r['id']}")
            if config is not BAD:
                out.append({"id": r["id"], "name": r["name"], "config": config,
                            "started": r["started"], "finished": r["finished"]})
        return out

    # ------------------------------------------------------------------ points
    def measured_keys(self, target: str, env_key: str) -> set[str]:
        rows = self.conn.execute("SELECT point_key FROM points WHERE target=? AND env_key=? AND status='ok'",
                                 (target, env_key)).fetchall()
        return {r[0] for r in rows}

    def is_measured(self, point_key: str, target: str, env_key: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM points WHERE point_key=? AND target=? AND env_key=? AND status='ok'",
            (point_key, target, env_key)).fetchone() is not None

    def put_point(self, rec: PointResult, sweep_id: int | None = None, force: bool = False) -> bool:
        """Store one point and its layers in one transaction. Returns False when an ``ok`` row for the
        same identity exists already and ``force`` is off (another sweep measured it first)."""
        with self._writing() as conn:
            old = conn.execute("SELECT id, status FROM points WHERE point_key=? AND target=? AND env_key=?",
                               (rec.point_key, rec.target, rec.env_key)).fetchone()
            if old is not None:
                if old["status"] == "ok" and not (force and rec.status == "ok"):
                    return False
                conn.execute("DELETE FROM layers WHERE point_id=?", (old["id"],))
                conn.execute("DELETE FROM points WHERE id=?", (old["id"],))
            columns = {**rec.flat(), **_json_columns(rec), "sweep_id": sweep_id, "created": time.time()}
            cur = conn.execute(f"INSERT INTO points({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                               tuple(columns.values()))
            conn.executemany(
                "INSERT INTO layers(point_id, idx, name, onnx_nodes_json, op_type, category, time_ms,"
                " mean_ms, flops, params, acts, opaque, extras_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [_layer_values(cur.lastrowid, i, row.to_dict()) for i, row in enumerate(rec.layer_rows)])
            return True

    @contextmanager
    def _writing(self):
        try:
            with self.transaction() as conn:
                yield conn
        except sqlite3.Error as err:
            raise _disk_problem(self.path, err) from None
        except OverflowError as err:        # SQLite holds integers up to 2**63 - 1
            raise BadInput(f"{self.path}: a value too large to store ({first_line(err)})") from None

    def points(self, status: str | None = "ok", with_layers: bool = False) -> list[PointResult]:
        """Stored points, oldest first (with their layer profiles when ``with_layers``). A row whose JSON
        or numbers are malformed is left out, with a line in ``problems`` naming it."""
        query = "SELECT * FROM points" + (" WHERE status=?" if status else "") + " ORDER BY id"
        rows = self.conn.execute(query, (status,) if status else ()).fetchall()
        self.rows.note_foreign_statuses(self.conn)
        out = []
        for r in self.rows.newest_per_point(rows):
            d = {"layer_count": None, "flavour": None, **dict(r)}      # an older store's rows lack the newer columns
            where = f"point row {d['id']} ({d['point_key']} [{d['target']}])"
            decoded = {col: self.rows.json(d[col], dict, f"{where} {col}") if d.get(col) else None
                       for col in ("spec_json", "latency_json", "layer_summary_json", "stage_seconds_json",
                                   "contention_json")}
            if any(v is BAD for v in decoded.values()) or not self.rows.numbers_ok(d, where):
                continue
            layers = None
            if with_layers and decoded["layer_summary_json"] is not None:
                rows_of_layers = self.layers(d["id"], where)
                if rows_of_layers is BAD:
                    continue
                layers = (decoded["layer_summary_json"], rows_of_layers)
            result = self.rows.typed(lambda: _result(d, decoded, layers), where)
            if result is not BAD:
                out.append(result)
        return out

    def layers(self, point_id: int, where: str = ""):
        """The point's layer rows; BAD (and a line in ``problems``) when one is malformed."""
        rows = self.conn.execute("SELECT * FROM layers WHERE point_id=? ORDER BY idx", (point_id,)).fetchall()
        out = []
        for r in rows:
            d = {k: r[k] for k in _LAYER_COLUMNS if k != "onnx_nodes"}
            d["onnx_nodes"] = self.rows.json(r["onnx_nodes_json"], list, f"{where or point_id} layer {r['idx']}")
            extras = self.rows.json(r["extras_json"], dict, f"{where or point_id} layer {r['idx']}") \
                if r["extras_json"] else {}
            if d["onnx_nodes"] is BAD or extras is BAD:
                return BAD
            d["opaque"] = bool(r["opaque"])
            d.update(extras)
            out.append(d)
        return out

    def contended_keys(self, target: str, env_key: str) -> set[str]:
        """Keys of the measured points of ``target`` whose timing is contended (LatencyStats.contended:
        the rounds' verdict, or the /proc flag of a point timed in one run)."""
        rows = self.conn.execute("SELECT point_key, latency_json, contention_json FROM points WHERE target=?"
                                 " AND env_key=? AND status='ok'", (target, env_key)).fetchall()
        out = set()
        for key, latency, contention in rows:
            latency = self.rows.json(latency, dict, "") if latency else {}
            contention = self.rows.json(contention, dict, "") if contention else None
            if latency is not BAD and contention is not BAD and point_contended(latency.get("rounds"), contention):
                out.add(key)
        return out

    # ------------------------------------------------------------------ interleaved rounds (sweep.round_store)
    def put_round(self, target: str, env_key: str, sweep_id: int | None, index: int, seconds: float, control: str,
                  control_ms: list[float], evidence: dict | None, slices: dict[str, list[float]]) -> None:
        """One finished round of ``target``'s timing and each point's samples in it (one transaction)."""
        with self._writing() as conn:
            put_round(conn, target, env_key, sweep_id, index, seconds, control, control_ms, evidence, slices)

    def rounds(self, target: str, env_key: str) -> list[dict]:
        """``target``'s stored rounds, oldest first (sweep.round_store.stored_rounds)."""
        return stored_rounds(self.conn, self.rows, target, env_key) if self.version >= 3 else []

    def forget_slices(self, target: str, env_key: str, point_keys) -> None:
        """Drop the stored slices of these points (about to be measured afresh: --force, --remeasure-noisy)."""
        keys = list(point_keys)
        if self.version >= 3 and keys:
            with self._writing() as conn:
                forget_slices(conn, target, env_key, keys)

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, count(*) FROM points GROUP BY status").fetchall()
        return {r[0]: r[1] for r in rows}

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


_LAYER_COLUMNS = ("name", "onnx_nodes", "op_type", "category", "time_ms", "mean_ms", "flops",
                  "params", "acts", "opaque")


def _json_columns(rec: PointResult) -> dict:
    latency = rec.latency.to_dict() if rec.latency else None
    contention = latency.pop("contention", None) if latency else None     # a column of its own
    summary = rec.layers.to_dict() if rec.layers else None
    if summary:
        summary.pop("layers")
    return {"spec_json": _dumps(rec.spec), "latency_json": _dumps(latency), "layer_summary_json": _dumps(summary),
            "stage_seconds_json": _dumps(rec.stage_seconds), "contention_json": _dumps(contention)}


def _layer_values(point_id: int, idx: int, layer: dict) -> tuple:
    return (point_id, idx, str(layer["name"]), json.dumps(list(layer.get("onnx_nodes", ()))),
            str(layer.get("op_type", "")), str(layer.get("category", "")), float(layer["time_ms"]),
            float(layer.get("mean_ms", layer["time_ms"])), int(layer.get("flops") or 0), int(layer.get("params") or 0),
            int(layer.get("acts") or 0), int(bool(layer.get("opaque"))),
            _dumps({k: v for k, v in layer.items() if k not in _LAYER_COLUMNS}))


def _result(row: dict, decoded: dict, layers: tuple | None) -> PointResult:
    """A stored row (its JSON columns decoded) as a PointResult."""
    latency = None
    if decoded["latency_json"] is not None or row.get(LATENCY_MS) is not None:
        latency = LatencyStats.from_dict({"median": row[LATENCY_MS], "batch": row["batch"],
                                          **(decoded["latency_json"] or {}), "contention": decoded["contention_json"]})
    return PointResult.from_flat(row, latency=latency, layers=LayerReport.from_dict(*layers) if layers else None,
                                 spec=decoded["spec_json"], stage_seconds=decoded["stage_seconds_json"],
                                 row_id=row["id"])


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)
