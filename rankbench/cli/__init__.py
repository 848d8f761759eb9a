"""The ``rankbench`` command: a thin layer over functions a notebook can call too.

Each command group lives in its own module with ``add_parser(subparsers)``; the parser's
``func`` default receives the parsed args and returns an exit code. Exit codes: 0 ok,
1 failure, 2 invalid input (bad spec, config or file), 3 not found (e.g. a hash that is not
in the store), 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import sys

EXIT_OK, EXIT_FAIL, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: command-group modules, in the order ``rankbench --help`` lists them
_COMMAND_MODULES = (
    "rankbench.cli.data",
    "rankbench.cli.spaces",
    "rankbench.cli.train",
    "rankbench.cli.run",
    "rankbench.cli.figures",
    "rankbench.cli.compare",
)


class CLIError(Exception):
    """An error to show the user without a traceback; ``code`` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_INVALID):
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    from rankbench import __version__

    parser = argparse.ArgumentParser(
        prog="rankbench",
        description="Measure how well one-shot multi-path NAS supernets rank NAS-Bench-101 cells.",
    )
    parser.add_argument("--version", action="version", version=f"rankbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a command group not written yet
            if e.name == name:
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INVALID
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"rankbench: error: {e}", file=sys.stderr)
        return e.code
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("rankbench: interrupted; finished work is saved, rerun the same command to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, KeyError, FileNotFoundError) as e:
        # library errors carry a specific message (what, where, how to fix)
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"rankbench: error: {msg}", file=sys.stderr)
        return EXIT_INVALID
