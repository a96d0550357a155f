"""The results store's points and their per-layer rows: how a PointResult is written into the
``points`` and ``layers`` tables and read back. Store.put_point (inside its transaction), Store.points
and Store.contended_keys call these (scaleprof.sweep.store); a row that cannot be decoded is left out
of what is read, with a line in the RowDecoder's ``problems``."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from scaleprof.profile.types import LatencyStats, LayerReport, point_contended
from scaleprof.sweep.result import LATENCY_MS, PointResult
from scaleprof.sweep.rows import BAD, RowDecoder

LAYER_COLUMNS = ("name", "onnx_nodes", "op_type", "category", "time_ms", "mean_ms", "flops",
                 "params", "acts", "opaque")
JSON_COLUMNS = ("spec_json", "latency_json", "layer_summary_json", "stage_seconds_json", "contention_json")


def put_point(conn: sqlite3.Connection, rec: PointResult, sweep_id: int | None, force: bool) -> bool:
    """Store one point and its layers (inside the caller's transaction). False when an ``ok`` row for the
    same identity exists already and ``force`` is off (another sweep measured it first)."""
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


def stored_points(conn: sqlite3.Connection, rows: RowDecoder, status: str | None,
                  with_layers: bool) -> list[PointResult]:
    """Stored points, oldest first (with their layer profiles when ``with_layers``). A row whose JSON
    or numbers are malformed is left out, with a line in ``rows.problems`` naming it."""
    query = "SELECT * FROM points" + (" WHERE status=?" if status else "") + " ORDER BY id"
    found = conn.execute(query, (status,) if status else ()).fetchall()
    rows.note_foreign_statuses(conn)
    out = []
    for r in rows.newest_per_point(found):
        d = {"layer_count": None, "flavour": None, **dict(r)}      # an older store's rows lack the newer columns
        where = f"point row {d['id']} ({d['point_key']} [{d['target']}])"
        decoded = {col: rows.json(d[col], dict, f"{where} {col}") if d.get(col) else None for col in JSON_COLUMNS}
        if any(v is BAD for v in decoded.values()) or not rows.numbers_ok(d, where):
            continue
        layers = None
        if with_layers and decoded["layer_summary_json"] is not None:
            rows_of_layers = stored_layers(conn, rows, d["id"], where)
            if rows_of_layers is BAD:
                continue
            layers = (decoded["layer_summary_json"], rows_of_layers)
        result = rows.typed(lambda: _result(d, decoded, layers), where)
        if result is not BAD:
            out.append(result)
    return out


def stored_layers(conn: sqlite3.Connection, rows: RowDecoder, point_id: int, where: str = ""):
    """The point's layer rows; BAD (and a line in ``rows.problems``) when one is malformed."""
    out = []
    for r in conn.execute("SELECT * FROM layers WHERE point_id=? ORDER BY idx", (point_id,)).fetchall():
        d = {k: r[k] for k in LAYER_COLUMNS if k != "onnx_nodes"}
        d["onnx_nodes"] = rows.json(r["onnx_nodes_json"], list, f"{where or point_id} layer {r['idx']}")
        extras = rows.json(r["extras_json"], dict, f"{where or point_id} layer {r['idx']}") \
            if r["extras_json"] else {}
        if d["onnx_nodes"] is BAD or extras is BAD:
            return BAD
        d["opaque"] = bool(r["opaque"])
        d.update(extras)
        out.append(d)
    return out


def contended_keys(conn: sqlite3.Connection, rows: RowDecoder, target: str, env_key: str) -> set[str]:
    """Keys of the measured points of ``target`` whose timing is contended (LatencyStats.contended:
    the rounds' verdict, or the /proc flag of a point timed in one run)."""
    found = conn.execute("SELECT point_key, latency_json, contention_json FROM points WHERE target=?"
                         " AND env_key=? AND status='ok'", (target, env_key)).fetchall()
    out = set()
    for key, latency, contention in found:
        latency = rows.json(latency, dict, "") if latency else {}
        contention = rows.json(contention, dict, "") if contention else None
        if latency is not BAD and contention is not BAD and point_contended(latency.get("rounds"), contention):
            out.add(key)
    return out


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
            _dumps({k: v for k, v in layer.items() if k not in LAYER_COLUMNS}))


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
