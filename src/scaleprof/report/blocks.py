"""The blocks a report is made of, independent of its format: a Document of Sections holding
paragraphs (plain text), Tables and Images, and the text forms of the numbers and points in them.

document.py and the other section builders (precisions.py, prediction.py, layer_check.py) fill
them; html.py and markdown.py render the same Document, so report.html and report.md say the same.
Every string is plain text (model names, target names, errors come from users' configs and model
files); the renderers escape it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

from scaleprof.core.text import slug
from scaleprof.report.analysis import strategy_label
from scaleprof.sweep.result import PointResult


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    name: str              # file stem in report_files/
    png: bytes
    alt: str


class ImageNames:
    """Hands out a document's images with unique file stems as they are made (two targets whose
    names slug alike get "-2", "-3"...); a document without plots has none (``None``)."""

    def __init__(self):
        self._taken: dict[str, int] = {}

    def image(self, stem: str, png: bytes, alt: str) -> Image:
        stem = slug(stem)
        n = self._taken.get(stem, 0)
        self._taken[stem] = n + 1
        return Image(f"{stem}-{n + 1}" if n else stem, png, alt)


Block = Union[str, Table, Image]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2
    anchor: str = ""


@dataclass
class Document:
    title: str
    sections: list[Section]


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{max(digits - 1, 1)}f}".rstrip("0").rstrip(".")
    return str(value)


def point_label(row: PointResult, with_target: bool = False) -> str:
    res = f" @{row.resolution}" if row.resolution else ""
    text = f"{row.model} {strategy_label(row)} x{float(row.scale):g}{res} b{row.batch}"
    return f"{text} [{row.target}]" if with_target else text
