"""The `scaleprof` command: a thin dispatcher over the subtools in scaleprof.tools.

Each subtool module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
the argument groups they share (model selection, shape, engine, timing, output) are in
scaleprof.tools.args. Errors meant for the user (ScaleprofError) become one line on stderr and a
non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from scaleprof import __version__
from scaleprof.errors import ScaleprofError

DESCRIPTION = ("How a scaled CNN really runs on each deployment target: scale a model, count it, "
               "export it to ONNX, build engines, profile them and report.")

SUBTOOLS = (
    "models", "scale", "count",
    "export", "build", "inspect",
    "profile", "ingest",
    "sweep", "report", "demo",
    "calibrate", "predict", "recommend",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage errors: one line, exit 2
        print(f"scaleprof: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scaleprof", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"scaleprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBTOOLS:
        tool = importlib.import_module(f"scaleprof.tools.{name}")
        tool_parser = sub.add_parser(tool.NAME, help=tool.HELP, description=tool.HELP)
        tool.add_arguments(tool_parser)
        tool_parser.set_defaults(_run=tool.run)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ScaleprofError as err:
        print(f"scaleprof {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # `scaleprof ... | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as err:  # disk full, permissions: the environment, worded by the OS
        print(f"scaleprof {args.command}: error: {err.strerror or err} ({err.filename or ''})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"scaleprof {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
