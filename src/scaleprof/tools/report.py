"""scaleprof report DIR: analyse a sweep's store and write report.html, report.md, results.csv/json."""

from __future__ import annotations

from scaleprof.tools.args import print_report_paths

NAME = "report"
HELP = "write report.html (self-contained), report.md, results.csv and results.json for a sweep directory"


def add_arguments(parser) -> None:
    parser.add_argument("dir", help="a sweep's output directory (holding results.sqlite)")
    parser.add_argument("--budget-ms", type=float, nargs="+", metavar="MS",
                        help="latency budgets to answer (default: the config's budget_ms, else the median latency)")
    parser.add_argument("--no-plots", action="store_true", help="tables only (faster)")


def run(args) -> int:
    from scaleprof.report import write_report

    paths = write_report(args.dir, budgets=args.budget_ms, plots=not args.no_plots)
    print(f"{paths.points} measured points, {paths.failures} failed")
    print_report_paths(paths)
    return 0
