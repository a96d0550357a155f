"""Text helpers shared by every stage."""

from __future__ import annotations

import re


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
