"""The `scaleprof` command: a thin dispatcher over the subtools in scaleprof.tools.

Each subtool module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
the argument groups they share (model selection, shape, engine, timing, output) are in
scaleprof.tools.args. Errors meant for the user (ScaleprofError) become one line on stderr and a
non-zero exit; so does anything unexpected (the last line of defence), with a hint that
``--debug`` shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from scaleprof import __version__
from scaleprof.core.files import quiet_libraries
from scaleprof.core.text import first_line, single_line
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
DEBUG_HELP = "show the traceback of an unexpected error instead of one line"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage errors: one line, exit 2
        print(f"scaleprof: error: {single_line(message)}", file=sys.stderr)
        raise SystemExit(2)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scaleprof", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"scaleprof {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBTOOLS:
        tool = importlib.import_module(f"scaleprof.tools.{name}")
        tool_parser = sub.add_parser(tool.NAME, help=tool.HELP, description=tool.HELP)
        tool.add_arguments(tool_parser)
        # also after the subcommand; SUPPRESS keeps a top-level --debug when it is not repeated here
        tool_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        tool_parser.set_defaults(_run=tool.run)
    return parser


class _ClosedStream:
    """Standing in for a standard stream that was closed before scaleprof started (``>&-``)."""

    encoding = "utf-8"

    def __init__(self, name: str):
        self.name = name

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        raise OSError(9, "cannot write: standard output is closed", self.name)

    def flush(self) -> None:
        pass


def _guard_streams() -> None:
    """Python sets a standard stream to None when its descriptor is closed; print() then writes an
    error meant for stderr to stdout, and output meant for stdout nowhere (exit 0). Errors go
    nowhere instead, and writing output fails (a non-zero exit)."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    if sys.stdout is None:
        sys.stdout = _ClosedStream("<stdout>")


def main(argv=None) -> int:
    _guard_streams()
    quiet_libraries()
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    code = _run_quietly(args) if not args.debug else _run(args)
    try:
        sys.stdout.flush()                  # a full or broken stdout is an error, not a silent loss
    except BrokenPipeError:
        _silence_stdout()
    except OSError as err:
        _error(args, f"cannot write standard output: {err.strerror or first_line(err)}")
        _silence_stdout()
        return code or 1
    return code


def _run_quietly(args) -> int:
    """_run with the libraries' Python warnings (numpy's RuntimeWarnings, torch's exporter notices) and
    log records below errors kept off stderr, which carries scaleprof's own lines only; --debug shows
    them."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _run(args)
    finally:
        logging.disable(previous)


def _run(args) -> int:
    try:
        return int(args._run(args) or 0)
    except ScaleprofError as err:
        _error(args, str(err))
        return err.exit_code
    except BrokenPipeError:  # `scaleprof ... | head`: the reader left, nothing to report
        _silence_stdout()
        return 0
    except OSError as err:  # disk full, permissions: the environment, worded by the OS
        _error(args, _os_error(err))
        return 1
    except KeyboardInterrupt:
        print(f"scaleprof {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if args.debug:
            raise
        _error(args, f"{_unexpected(err)} (rerun with --debug for the traceback)")
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, descriptor included: what is still buffered for a reader that left
    (or a full disk) would otherwise fail again at exit, with a message of Python's own."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        sys.stdout = open(os.devnull, "w")
    finally:
        os.close(devnull)


def _error(args, message: str) -> None:
    print(f"scaleprof {args.command}: error: {single_line(message)}", file=sys.stderr)


def _os_error(err: OSError) -> str:
    where = f" ({err.filename})" if err.filename else ""
    return f"{err.strerror or first_line(err)}{where}"


def _unexpected(err: Exception) -> str:
    if isinstance(err, MemoryError):
        return "out of memory (the input asks for more than this machine has)"
    if isinstance(err, RecursionError):
        return "input nested too deeply (RecursionError)"
    detail = first_line(str(err))
    return f"unexpected {type(err).__name__}" + (f": {detail}" if detail else "")


if __name__ == "__main__":
    sys.exit(main())
