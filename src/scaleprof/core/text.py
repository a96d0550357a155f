"""Text helpers shared by every stage."""

from __future__ import annotations

import json
import re

from scaleprof.errors import BadInput


def first_line(err: BaseException | str, limit: int = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's name."""
    lines = str(err).strip().splitlines()
    if lines:
        return lines[0][:limit]
    return type(err).__name__ if isinstance(err, BaseException) else ""


def slug(text: str, default: str = "x") -> str:
    """Lower-case letters, digits, '_' and single dashes, at most 80 characters: safe as a file name
    or an HTML anchor on every platform."""
    out = re.sub(r"[^a-z0-9_]+", "-", str(text).lower()).strip("-")
    return out[:80] or default


def parse_json(text: str | bytes, where: str):
    """``text`` decoded as JSON; malformed or absurdly nested JSON is a BadInput naming ``where``
    (the JSON parser raises RecursionError past a depth of about a thousand)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(f"{where}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise BadInput(f"{where}: JSON nested too deeply") from None
    except (ValueError, TypeError) as err:          # e.g. bytes that are not UTF-8
        raise BadInput(f"{where}: not valid JSON ({first_line(err)})") from None


def single_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (a newline as ``\\n``): a
    message that quotes a user's path or name stays one line."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in str(text))
