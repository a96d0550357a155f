"""report.md: the same Document as report.html, plots as PNG files in report_files/."""

from __future__ import annotations

from scaleprof.report.blocks import Document, Image, Section, Table

_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def md_escape(text: str) -> str:
    """Plain text from configs or model files, made inert in Markdown (and in the HTML it may become)."""
    return str(text).replace("\n", " ").translate(_SPECIAL).replace("&", "&amp;")


def render(doc: Document, image_dir: str = "report_files") -> str:
    lines = [f"# {md_escape(doc.title)}", ""]
    for section in doc.sections:
        _section(section, lines, image_dir)
    return "\n".join(lines).rstrip() + "\n"


def _section(section: Section, lines: list[str], image_dir: str) -> None:
    lines += ["#" * min(max(section.level, 2), 4) + " " + md_escape(section.title), ""]
    for block in section.blocks:
        if isinstance(block, Section):
            _section(block, lines, image_dir)
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"**{md_escape(block.caption)}**", ""]
            lines.append("| " + " | ".join(md_escape(h) for h in block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            for row in block.rows:
                lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"![{md_escape(block.alt)}]({image_dir}/{block.name}.png)", ""]
        else:
            lines += [md_escape(block), ""]
