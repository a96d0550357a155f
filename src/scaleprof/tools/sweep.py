"""scaleprof sweep CONFIG.yaml [-o DIR] [--dry-run] [--force]: run (or resume) a sweep, then write its report."""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "sweep"
HELP = "run a sweep config (models x strategies x scales x batch x resolution x targets), resumable"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="sweep YAML file, or the name of a shipped config (scaleprof/configs)")
    parser.add_argument("-o", "--out", help="output directory (store, caches, report); "
                                            "default scaleprof-out/<config name>")
    parser.add_argument("--dry-run", action="store_true", help="list the points and predicted counts; run nothing")
    parser.add_argument("--force", action="store_true", help="re-measure points already in the store")
    parser.add_argument("--no-report", action="store_true", help="do not write the report afterwards")
    parser.add_argument("--no-progress", action="store_true", help="one line per point instead of a progress bar")


def _shipped_folder():
    from importlib import resources

    return resources.files("scaleprof").joinpath("configs")


def resolve_config(name: str):
    """A path, or the stem of a config shipped in scaleprof/configs (e.g. 'demo')."""
    from scaleprof.errors import BadInput, nearest
    from scaleprof.sweep.config import load_config

    path = Path(name)
    if not path.exists() and not path.suffix:
        shipped = _shipped_folder().joinpath(f"{name}.yaml")
        if shipped.is_file():
            return load_config(Path(str(shipped)))
        names = shipped_configs()
        raise BadInput(f"{name}: no such config file, nor a shipped config{nearest(name, names)}; "
                       f"shipped: {', '.join(names)}")
    return load_config(path)


def shipped_configs() -> list[str]:
    return sorted(p.name[:-5] for p in _shipped_folder().iterdir() if p.name.endswith(".yaml"))


def run(args) -> int:
    config = resolve_config(args.config)
    out = Path(args.out) if args.out else Path("scaleprof-out") / config.name
    if args.dry_run:
        return print_dry_run(config, out)
    return sweep_and_report(config, out, force=args.force, report=not args.no_report,
                            progress=False if args.no_progress else None)


def sweep_and_report(config, out: Path, force: bool = False, report: bool = True, progress=None) -> int:
    from scaleprof.sweep.runner import run_sweep

    result = run_sweep(config, out, force=force, progress=progress)
    overhead = f", {100 * result.overhead_share:.0f}% of it outside measurement" if result.measured else ""
    print(f"sweep {config.name}: {result.measured} measured ({result.reused} shared with s=1 of another "
          f"strategy), {result.skipped} already in the store, {result.failed} failed, "
          f"in {result.seconds:.1f} s{overhead}")
    for label, error in result.failures[:10]:
        print(f"  failed: {label}: {error}")
    if len(result.failures) > 10:
        print(f"  ... and {len(result.failures) - 10} more (see the report)")
    if report:
        from scaleprof.report import write_report

        paths = write_report(out)
        for verdict in paths.verdicts:
            print(verdict)
        print(f"report: {paths.html}")
        print(f"        {paths.markdown}, {paths.csv}, {paths.json}")
    return 1 if result.failed else 0


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
