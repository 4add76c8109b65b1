"""What every skeljax command line shares: the parser, the verbosity flag and the one-line `error:` exit.

Conventions (docs/architecture.md, "Command lines"): each tool is an argparse `main(argv=None) -> int` that tests
can call; a bad flag exits with status 2 (argparse's own), a user error (a missing or malformed file, a value that
fails validation: the tools' error classes all derive from ValueError) prints one `error: <file or flag>: <problem>`
line on stderr and returns 1, with no traceback. Programming errors still raise with their traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

USER_ERROR = 1  # a file or value the tool cannot use; 2 stays argparse's (and absl's) status for a bad flag
USER_ERRORS = (ValueError, OSError)  # PredictError, ScoreFileError, RenderError, CheckpointFormatError, ...
VERBOSE_ENV = "SKELJAX_VERBOSE"  # set to 1: the trainer prints a user error's traceback too (python -m skeljax.main)


def verbose_env() -> bool:
    """True when `$SKELJAX_VERBOSE` is set to anything but '', '0' or 'false'."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser whose help is the module docstring as written, with the shared --verbose flag."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="log progress (-v: INFO, -vv: DEBUG); default: warnings only"
    )
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses argv (sys.argv[1:] when None) and sets the logging level from --verbose."""
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    return args


def setup_logging(verbose: int = 0) -> None:
    """Python logging on stderr: WARNING by default, INFO with -v, DEBUG with -vv."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def error(message: object, status: int = USER_ERROR) -> int:
    """Prints `error: <message>` as one line on stderr; returns the exit status to give."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status


def run(body: Callable[[], int | None]) -> int:
    """Runs a tool's body: its status (0 when it returns None), or one `error:` line and 1 for a user error."""
    try:
        status = body()
    except USER_ERRORS as e:  # the message names the file and the problem
        return error(e)
    return 0 if status is None else int(status)
