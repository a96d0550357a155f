"""report stage: analysis of a results store and the report files (HTML, Markdown, CSV, JSON).

    from scaleprof.report import write_report
    paths = write_report("out/")     # report.html, report.md, results.csv, results.json, report_files/

    analysis.py  what the measurements say: fits, correlations, growth exponents, rankings, budgets
    fits.py      the fits themselves: linear and log-log least squares with Pearson's r and their error
    faithful.py  what is said of points that could not be measured faithfully (no verdict from them)
    blocks.py    the report's content, format-free: a document of sections, paragraphs, tables, images
    document.py  the report's main sections, from the analysis
    precisions.py  precisions at equal configuration: speedup over fp32, activation bytes, rankings
    plots.py     the document's plots (PNG bytes)
    html.py      report.html (self-contained) from the document
    markdown.py  report.md (plots in report_files/) from the same document
    tables.py    results.csv and results.json: one row per measured point, timm's column names
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from scaleprof.core.files import write_atomic
from scaleprof.errors import BadInput


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    markdown: Path
    csv: Path
    json: Path
    points: int
    failures: int
    verdicts: tuple[str, ...]
    problems: tuple[str, ...] = ()      # store rows left out (malformed), one line each
    unfaithful: str | None = None       # one line when the machine could not be measured faithfully


def write_report(directory, budgets: list[float] | None = None, plots: bool = True) -> ReportPaths:
    """Read DIR/results.sqlite and write the report files beside it (each written atomically). Rows
    of the store that cannot be read are left out and named in ``ReportPaths.problems``."""
    from scaleprof.report import analysis, document, html, layer_check, markdown, precisions, prediction, tables
    from scaleprof.sweep.store import Store

    bad = [b for b in budgets or () if not (isinstance(b, (int, float)) and 0 < b < math.inf)]
    if bad:
        raise BadInput(f"latency budgets must be positive, finite milliseconds, got {bad[0]!r}")
    directory = Path(directory)
    with Store(directory, create=False) as store:
        points = store.points("ok", with_layers=True)
        failures = store.points("failed")
        environments = store.environments()
        sweeps = store.sweeps()
        problems = tuple(store.rows.problems)
    if not budgets:
        configured = sorted({b for s in sweeps for b in (s["config"].get("budget_ms") or [])})
        budgets = configured or None
    result = analysis.analyze(points, budgets)
    doc = document.build(result, failures, environments, sweeps, with_plots=plots,
                         more=precisions.sections(result) + prediction.sections(result, environments)
                         + layer_check.sections(points))

    files = directory / "report_files"
    images = list(_images(doc))
    if images:
        files.mkdir(exist_ok=True)
    for image in images:
        write_atomic(files / f"{image.name}.png", image.png)
    rows = [tables.result_row(p) for p in points]
    paths = ReportPaths(directory / "report.html", directory / "report.md", directory / "results.csv",
                       directory / "results.json", len(points), len(failures),
                       tuple(result.verdicts().values()) + tuple(precisions.verdicts(result)), problems,
                       result.unfaithful())
    write_atomic(paths.csv, tables.to_csv(rows))
    write_atomic(paths.json, tables.to_json(rows, environments, failures, document.convention(sweeps)))
    write_atomic(paths.markdown, markdown.render(doc, files.name))
    write_atomic(paths.html, html.render(doc))
    return paths


def _images(doc):
    from scaleprof.report.blocks import Image, Section

    def walk(blocks):
        for block in blocks:
            if isinstance(block, Image):
                yield block
            elif isinstance(block, Section):
                yield from walk(block.blocks)
    yield from walk(doc.sections)
