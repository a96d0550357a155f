"""Reading a results store's rows defensively: a row whose JSON or numbers are malformed (a damaged
or hand-edited store) is left out of what is read, with one line saying which, and the rest is read."""

from __future__ import annotations

import math
from pathlib import Path

from scaleprof.core.text import parse_json
from scaleprof.errors import BadInput
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
        """A point's counts and shape are numbers, and a measured one's latency a positive finite one."""
        bad = [k for k in ("batch", "scale", "flops", "params", "acts", "layer_count", "resolution")
               if point.get(k) is not None and not _finite(point[k])]
        if point.get("status") == "ok" and not (_finite(point.get(LATENCY_MS)) and point[LATENCY_MS] > 0):
            bad.append(LATENCY_MS)
        if bad:
            self.problems.append(f"{self.path}: {where}: malformed {', '.join(bad)}; left out")
        return not bad

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


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
