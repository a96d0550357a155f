"""The results store: one SQLite database per output directory (standard library sqlite3).

- WAL journal, a busy timeout, one transaction per point: a point is either fully stored
  (its row, its per-layer rows, its environment) or not at all, whatever kills the process.
- A point is identified by (point_key, target, env_key). Re-running a sweep skips points whose
  identity already has an ``ok`` row; a failed point is retried and its row replaced;
  ``--force`` replaces measured rows too. The UNIQUE constraint makes duplicates impossible,
  even when two sweeps write to one store at once.
- The schema, its versions and upgrades: scaleprof.sweep.store_schema; how points and their layers
  are written and read back: scaleprof.sweep.point_store.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from scaleprof.core.files import check_replaceable
from scaleprof.core.text import first_line
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.sweep.config import definition, describe_definition
from scaleprof.sweep.point_store import contended_keys, put_point, stored_points
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.round_store import forget_slices, put_round, stored_rounds
from scaleprof.sweep.rows import BAD, RowDecoder
from scaleprof.sweep.store_schema import SCHEMA_VERSION, StoreError, open_schema

STORE_NAME = "results.sqlite"
BUSY_TIMEOUT_S = 60.0       # how long a writer waits for another sweep's transaction on the same store


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
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._connect()
                return
            except StoreError:
                self.close()
                raise
            except sqlite3.DatabaseError as err:
                self.close()
                if "database is locked" in str(err) and time.monotonic() < deadline:
                    time.sleep(0.05)        # SQLite gave up at once (no busy wait): another sweep is opening it too
                    continue
                if "not a database" in str(err) or "malformed" in str(err):
                    raise StoreError(f"{self.path}: not a scaleprof results store ({err}); "
                                     "use another output directory") from None
                raise _disk_problem(self.path, err) from None

    def _connect(self) -> None:
        self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self._init_schema()

    def _init_schema(self) -> None:
        with self.transaction() as conn:
            self.version, self.upgraded_from = open_schema(conn, self.path, self._writable)

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
            return put_point(conn, rec, sweep_id, force)

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
        return stored_points(self.conn, self.rows, status, with_layers)

    def contended_keys(self, target: str, env_key: str) -> set[str]:
        """Keys of the measured points of ``target`` whose timing is contended (LatencyStats.contended:
        the rounds' verdict, or the /proc flag of a point timed in one run)."""
        return contended_keys(self.conn, self.rows, target, env_key)

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

