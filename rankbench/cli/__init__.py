"""The ``rankbench`` command: a thin layer over functions a notebook can call too.

Each command group lives in its own module with ``add_parser(subparsers)``; the parser's
``func`` default receives the parsed args and returns an exit code. Exit codes: 0 ok,
1 failure, 2 invalid input (bad spec, config or file; a folder that cannot be written), 3 not
found (e.g. a hash that is not in the store), 130 interrupted by Ctrl-C (SIGINT), 143 stopped by
SIGTERM (128 + the signal's number, as a shell reports a process the signal ended).
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys

EXIT_OK, EXIT_FAIL, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143

#: command-group modules, in the order ``rankbench --help`` lists them
_COMMAND_MODULES = (
    "rankbench.cli.data",
    "rankbench.cli.spaces",
    "rankbench.cli.train",
    "rankbench.cli.run",
    "rankbench.cli.figures",
    "rankbench.cli.compare",
    "rankbench.cli.runs",
)


class CLIError(Exception):
    """An error to show the user without a traceback; ``code`` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_INVALID):
        super().__init__(message)
        self.code = code


def interrupted_code(e: BaseException | None = None) -> int:
    """The exit code of an interruption: 143 for SIGTERM, 130 for Ctrl-C. Training turns either
    signal into a KeyboardInterrupt whose argument is the signal's name
    (:class:`rankbench.training.hooks.Interrupts`)."""
    return EXIT_TERMINATED if e is not None and e.args and e.args[0] == "SIGTERM" else EXIT_INTERRUPTED


#: OS errors that mean "this path cannot be written" (a check up front missed it): an
#: invalid-input error with a fix, not a traceback
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}


def build_parser() -> argparse.ArgumentParser:
    from rankbench import __version__

    parser = argparse.ArgumentParser(
        prog="rankbench",
        description="Measure how well one-shot multi-path NAS supernets rank NAS-Bench-101 cells.",
    )
    parser.add_argument("--version", action="version", version=f"rankbench {__version__}")
    parser.add_argument("--allow-other-platform", action="store_true",
                        help="reuse runs, score caches and truths made on another compute platform (CPU "
                             "model, dispatch level, threads, torch build: README 'Reproducibility'); the "
                             "reports record that they did (RANKBENCH_ALLOW_OTHER_PLATFORM=1 does the same)")
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
    if args.allow_other_platform:
        import os

        os.environ["RANKBENCH_ALLOW_OTHER_PLATFORM"] = "1"  # rankbench.numerics.ALLOW_ENV
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"rankbench: error: {e}", file=sys.stderr)
        return e.code
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt as e:
        print("rankbench: interrupted; finished work is saved, rerun the same command to continue",
              file=sys.stderr)
        return interrupted_code(e)
    except (ValueError, KeyError, FileNotFoundError) as e:
        # library errors carry a specific message (what, where, how to fix)
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"rankbench: error: {msg}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"rankbench: error: {where}{e.strerror}; make that folder writable (chmod u+w) or point the "
              f"command at another one (--runs-root / RANKBENCH_RUNS / --out)", file=sys.stderr)
        return EXIT_INVALID
