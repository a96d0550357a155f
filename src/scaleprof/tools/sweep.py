"""scaleprof sweep CONFIG.yaml [-o DIR] [--dry-run] [--force]: run (or resume) a sweep, then write its report."""

from __future__ import annotations

import sys
from pathlib import Path

from scaleprof.tools.args import DEFAULT_OUT, add_sweep_run_arguments, sweep_and_report

NAME = "sweep"
HELP = "run a sweep config (models x strategies x scales x batch x resolution x targets), resumable"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="sweep YAML file, or the name of a shipped config (scaleprof/configs)")
    parser.add_argument("-o", "--out", help="output directory (store, caches, report); "
                                            f"default {DEFAULT_OUT}/<config name>")
    parser.add_argument("--dry-run", action="store_true", help="list the points and predicted counts; run nothing")
    parser.add_argument("--no-report", action="store_true", help="do not write the report afterwards")
    add_sweep_run_arguments(parser)


def run(args) -> int:
    from scaleprof.sweep.config_file import resolve_config

    from scaleprof.errors import BadInput

    if args.dry_run:
        ignored = [flag for flag, given in (("--force", args.force), ("--no-report", args.no_report),
                                            ("--no-progress", args.no_progress)) if given]
        if ignored:
            raise BadInput(f"{', '.join(ignored)}: for a run; --dry-run runs nothing")
    config = resolve_config(args.config)
    out = Path(args.out) if args.out else Path(DEFAULT_OUT) / config.name
    if args.dry_run:
        return print_dry_run(config, out)
    return sweep_and_report(config, out, args, report=not args.no_report)


def print_dry_run(config, out: Path) -> int:
    from scaleprof.sweep.runner import dry_run

    rows = dry_run(config, out)
    header = ("point", "res", "GMACs", "M params", "M acts", "flops ratio", "status")
    table = [header]
    for r in rows:
        if "error" in r:
            table.append((r["point"], "-", "-", "-", "-", "-", f"error: {r['error']}"))
            continue
        ratio = f"{r['flops_ratio']:.3f}" if r.get("flops_ratio") is not None else "-"
        table.append((r["point"], str(r["resolution"]), f"{r['flops'] / 1e9:.3f}", f"{r['params'] / 1e6:.2f}",
                      f"{r['acts'] / 1e6:.2f}", ratio, r["status"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    todo = sum(1 for r in rows if r["status"] == "to do")
    print(f"{len(rows)} points, {todo} to measure into {out} (dry run: nothing was run)", file=sys.stderr)
    return 2 if any("error" in r for r in rows) else 0
