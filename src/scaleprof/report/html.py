"""report.html: one self-contained file (CSS inline, plots as base64 PNG data URIs, no scripts, no
external requests), so it opens offline in any browser. Every string is escaped."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from scaleprof.report.blocks import Document, Image, Section, Table

_CSS_FILE = Path(__file__).with_name("report.css")


def render(doc: Document) -> str:
    css = _CSS_FILE.read_text(encoding="utf-8")
    toc = "".join(f'<li><a href="#{escape(s.anchor)}">{escape(s.title)}</a></li>'
                  for s in doc.sections if s.anchor)
    body = "\n".join(_section(s) for s in doc.sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">\n"
        f"<title>{escape(doc.title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(doc.title)}</h1><nav><ul>{toc}</ul></nav></header>\n<main>\n{body}\n</main>\n"
        "<footer>Written by scaleprof. Self-contained: plots are embedded, nothing is fetched.</footer>\n"
        "</body>\n</html>\n")


def _section(section: Section) -> str:
    level = min(max(section.level, 2), 4)
    anchor = f' id="{escape(section.anchor)}"' if section.anchor else ""
    parts = [f"<section{anchor}><h{level}>{escape(section.title)}</h{level}>"]
    for block in section.blocks:
        parts.append(_block(block))
    parts.append("</section>")
    return "\n".join(parts)


def _block(block) -> str:
    if isinstance(block, Section):
        return _section(block)
    if isinstance(block, Table):
        head = "".join(f"<th>{escape(str(h))}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
        return f'<div class="table"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(block.alt)}">'
                f"<figcaption>{escape(block.alt)}</figcaption></figure>")
    return f"<p>{escape(str(block))}</p>"
