"""``github-p2p gh ARGS…``: the argparse entry of the gh wrapper."""

from __future__ import annotations

import argparse
from typing import Any

from github_p2p.cli.gh.wrapper import GhWrapper

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``github-p2p gh``; every argument after it belongs to gh, ``-h`` included."""
    # A prefix character no gh argument starts with: argparse takes every argument as
    # positional and leaves --help, --json and the rest to gh.
    gh = sub.add_parser("gh", help="gh with read-only calls served through the cache",
                        add_help=False, prefix_chars="\x00")
    gh.add_argument("gh_argv", nargs=argparse.REMAINDER, metavar="ARGS")
    gh.set_defaults(func=_cmd_gh)


def _cmd_gh(args: argparse.Namespace) -> int:
    return GhWrapper().run(list(args.gh_argv))
