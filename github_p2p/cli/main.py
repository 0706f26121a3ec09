"""The ``github-p2p`` command line (argparse).

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error (one line on stderr,
no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from github_p2p import __version__
from github_p2p.errors import ConfigError, GitHubP2PError

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as ConfigError (exit 2, one line)."""

    def error(self, message: str) -> Any:
        raise ConfigError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for docs and tests)."""
    parser = _Parser(prog="github-p2p",
                     description="Share GitHub API responses across CI runners.")
    parser.add_argument("--version", action="version", version=f"github-p2p {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("GITHUB_P2P_LOG_LEVEL", "warning"),
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    from github_p2p.cli.gh import apicmd

    apicmd.register(sub)
    from github_p2p.cli import commands as _commands

    _commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    level = getattr(logging, args.log_level.upper())
    logging.basicConfig(level=level, format="github-p2p: %(levelname)s %(name)s: %(message)s")
    # libp2p logs an ERROR for every short-lived connection that closes during negotiation
    # (normal for a hub serving many runners); keep its chatter out unless debugging.
    logging.getLogger("libp2p").setLevel(level if level <= logging.DEBUG else logging.CRITICAL)
    try:
        result: int = args.func(args)
        return result
    except GitHubP2PError as exc:
        return _report(exc)
    except BaseExceptionGroup as group:
        # A daemon's nursery wraps what one of its tasks raised (an HTTP port in use...).
        sole = _sole_exception(group)
        if isinstance(sole, GitHubP2PError):
            return _report(sole)
        raise
    except KeyboardInterrupt:
        return 130


def _report(exc: GitHubP2PError) -> int:
    print(f"github-p2p: {exc}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
