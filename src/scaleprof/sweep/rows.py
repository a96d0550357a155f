"""Reading a results store's rows defensively: a row whose JSON or numbers are malformed (a damaged
or hand-edited store) is left out of what is read, with one line saying which, and the rest is read."""

from __future__ import annotations

import math
from pathlib import Path

from scaleprof.core.limits import MAX_BATCH, MAX_RESOLUTION, MIN_RESOLUTION
from scaleprof.core.text import parse_json
from scaleprof.errors import BadInput
from scaleprof.models.strategies import MAX_SCALE
from scaleprof.sweep.result import LATENCY_MS

BAD = object()                          # a stored value that could not be decoded


class RowDecoder:
    """Decodes the JSON and number columns of one store's rows; ``problems`` lists the rows left out."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def json(self, text, kind: type, where: str):
        """JSON ``text`` that must decode to a ``kind`` (dict or list); else BAD, and a line in
        ``problems`` naming ``where`` (left out of ``problems`` when ``where`` is empty)."""
        try:
            value = parse_json(text, f"{self.path}: {where}")
        except BadInput as err:
            return self._bad(where, f"{err}; left out")
        if not isinstance(value, kind):
            return self._bad(where, f"{self.path}: {where}: not a JSON {kind.__name__}; left out")
        return value

    def numbers_ok(self, point: dict, where: str) -> bool:
        """A point's counts and shape are numbers in the ranges scaleprof measures (a batch of 1..4096,
        a scale in (0, 256], counts of 0 or more, a resolution of 32..4096 px), and a measured one's
        latency a positive finite one."""
        bad = [k for k in ("batch", "scale", "flops", "params", "acts", "layer_count", "resolution")
               if point.get(k) is not None and not (_finite(point[k]) and _in_range(k, point[k]))]
        if point.get("status") == "ok" and not (_finite(point.get(LATENCY_MS)) and point[LATENCY_MS] > 0):
            bad.append(LATENCY_MS)
        if bad:
            self.problems.append(f"{self.path}: {where}: malformed {', '.join(bad)}; left out")
        return not bad

    def newest_per_point(self, rows) -> list:
        """``rows`` (oldest first) with one row per (point, target, environment), the newest; the older
        duplicates (a store made by something else: this schema refuses them) noted in ``problems``."""
        kept, seen = [], set()
        for r in reversed(rows):
            ident = (r["point_key"], r["target"], r["env_key"])
            if ident in seen:
                self.problems.append(f"{self.path}: point row {r['id']} ({r['point_key']} [{r['target']}]): "
                                     "a duplicate of a newer row; left out")
                continue
            seen.add(ident)
            kept.append(r)
        return kept[::-1]

    def note_foreign_statuses(self, conn) -> None:
        """A line in ``problems`` for each row whose status is neither 'ok' nor 'failed' (which no query
        for either status reads, so it would vanish from the report without a word)."""
        for r in conn.execute("SELECT id, point_key, status FROM points WHERE status NOT IN ('ok', 'failed')"):
            line = (f"{self.path}: point row {r['id']} ({r['point_key']}): unknown status "
                    f"{str(r['status'])[:40]!r}; left out")
            if line not in self.problems:
                self.problems.append(line)

    def typed(self, build, where: str):
        """``build()``, or BAD (and a line in ``problems``) when the row's values do not fit its types."""
        try:
            return build()
        except (TypeError, ValueError, KeyError) as err:
            return self._bad(where, f"{self.path}: {where}: malformed ({err}); left out")

    def _bad(self, where: str, message: str):
        if where:
            self.problems.append(message)
        return BAD


def _in_range(key: str, value) -> bool:
    low, high = {"batch": (1, MAX_BATCH), "scale": (1e-12, MAX_SCALE),
                 "resolution": (MIN_RESOLUTION, MAX_RESOLUTION)}.get(key, (0, math.inf))
    return low <= value <= high


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
