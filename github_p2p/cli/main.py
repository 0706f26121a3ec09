"""The ``github-p2p`` command line (argparse).

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error (one line on stderr,
no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from github_p2p import __version__
from github_p2p.cache.client import GitHubClient
from github_p2p.errors import ConfigError, GitHubHTTPError, GitHubP2PError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as ConfigError (exit 2, one line)."""

    def error(self, message: str) -> Any:
        raise ConfigError(f"{self.prog}: {message}")


def _header_arg(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header must look like 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _field_arg(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"field must look like key=value, got {text!r}")
    return name, value


def _cmd_api(args: argparse.Namespace) -> int:
    path = args.path if args.path.startswith("/") else "/" + args.path
    headers = dict(args.header or [])
    params = list(args.field or [])
    with GitHubClient.from_env() as gh:
        if args.method.upper() != "GET":
            body = dict(params) if params else None
            resp = gh.request(args.method, path, headers=headers, json_body=body)
            sys.stdout.write(resp.body.decode("utf-8", "replace") + "\n")
            return EXIT_OK if resp.status < 400 else EXIT_FAILURE
        data: Any = (list(gh.paginate(path, params=params, headers=headers))
                     if args.paginate else gh.get(path, params=params, headers=headers))
    json.dump(data, sys.stdout, indent=2 if sys.stdout.isatty() else None)
    sys.stdout.write("\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for docs and tests)."""
    parser = _Parser(prog="github-p2p",
                     description="Share GitHub API responses across CI runners.")
    parser.add_argument("--version", action="version", version=f"github-p2p {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("GITHUB_P2P_LOG_LEVEL", "warning"),
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    api = sub.add_parser("api", help="cached GET, JSON on stdout (like gh api)")
    api.add_argument("path")
    api.add_argument("--paginate", action="store_true", help="follow Link headers; one array")
    api.add_argument("-H", "--header", action="append", type=_header_arg, metavar="'K: V'")
    api.add_argument("-f", "-F", "--field", "--raw-field", action="append", type=_field_arg,
                     metavar="KEY=VALUE", help="query parameter (GET) or JSON field")
    api.add_argument("-X", "--method", default="GET")
    api.set_defaults(func=_cmd_api)

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
    except ConfigError as exc:
        print(f"github-p2p: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GitHubHTTPError as exc:
        print(f"github-p2p: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except GitHubP2PError as exc:
        print(f"github-p2p: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
