"""``github-p2p api ARGS…``: ``gh api`` through the github-p2p cache, without gh.

It takes ``gh api``'s flags and prints what gh prints (see :mod:`.apirun`), talking to
``GITHUB_API_URL`` with ``GITHUB_TOKEN``/``GH_TOKEN`` (through the runner's daemon when
``GITHUB_P2P_ENDPOINT`` is set). ``{owner}``/``{repo}`` come from ``GH_REPO``, else
``GITHUB_REPOSITORY``; ``{branch}`` from the git checkout in the working directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from github_p2p.cache.client import EndpointBackend, GitHubClient
from github_p2p.cli.gh.apiargs import parse_api_args
from github_p2p.cli.gh.apirun import ApiEnvironment, Fallback, Transport, UpstreamUrls, run_api
from github_p2p.cli.gh.ghenv import api_base, same_api
from github_p2p.cli.gh.realgh import RealGh, find_real_gh
from github_p2p.config import ClientSettings
from github_p2p.errors import ConfigError

__all__ = ["USAGE", "api_command", "register"]

USAGE = """usage: github-p2p api <endpoint> [flags]

gh api through the github-p2p cache: the same flags and the same output as `gh api`.
  -X, --method      HTTP method (POST when fields are given)
  -f, --raw-field   string parameter key=value     -F, --field   typed parameter (1, true,
  -H, --header      'Name: value'                                 null, @file, {owner})
  --input FILE      request body (- for stdin)     -p, --preview API previews
  --paginate        all pages                      -i, --include status line and headers
  -q, --jq EXPR     jq filter                      -t, --template Go template
  --silent          no body                        --hostname    must be GITHUB_API_URL's host
Endpoints: a path, `graphql`, or an absolute URL under GITHUB_API_URL.
"""


def register(sub: Any) -> None:
    """Add ``github-p2p api``; every argument after it is ``gh api``'s."""
    api = sub.add_parser("api", help="gh api through the cache (same flags, same output)",
                         add_help=False, prefix_chars="\x00")
    api.add_argument("api_argv", nargs=argparse.REMAINDER, metavar="ARGS")
    api.set_defaults(func=lambda args: api_command(list(args.api_argv)))


def _repo(env: Mapping[str, str]) -> tuple[str, str] | None:
    for name in ("GH_REPO", "GITHUB_REPOSITORY"):
        parts = [p for p in env.get(name, "").strip().split("/") if p]
        if len(parts) in (2, 3):
            return parts[-2], parts[-1]
    return None


def _branch() -> str | None:
    try:
        done = subprocess.run(["git", "symbolic-ref", "--quiet", "--short", "HEAD"],
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode().strip() or None if done.returncode == 0 else None


def _read_file(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror}") from exc


def _color(env: Mapping[str, str]) -> bool:
    if env.get("CLICOLOR_FORCE", "0") not in ("", "0"):
        return True
    return sys.stdout.isatty() and "NO_COLOR" not in env


def _gh_version(env: Mapping[str, str]) -> tuple[int, int, int] | None:
    # --paginate output changed in gh 2.31: print like the gh installed here, if any.
    try:
        return RealGh(find_real_gh(env), env).version()
    except ConfigError:
        return None


def api_command(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    """Run ``github-p2p api ARGV``; its exit code."""
    env = dict(os.environ if env is None else env)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    args = parse_api_args(argv)
    if args is None:
        raise ConfigError("github-p2p api: a flag gh api does not have (or -ab style grouping)")
    settings = ClientSettings.from_env(env)
    if args.hostname is not None:
        wanted = api_base(args.hostname.lower())
        if wanted is None or not same_api(wanted, settings.api_url):
            raise ConfigError(f"--hostname {args.hostname} is not GITHUB_API_URL's host")
    repo = _repo(env)

    def resolve(name: str) -> str | None:
        if name == "branch":
            return _branch()
        return None if repo is None else (repo[0] if name == "owner" else repo[1])

    environment = ApiEnvironment(
        api_url=settings.api_url, resolve=resolve, read_file=_read_file, now=time.time,
        jq=shutil.which("jq"), gh_version=_gh_version(env) if args.paginate else None,
        color=_color(env))
    with GitHubClient.from_env(env) as client:
        backend: Transport = client.backend
        if isinstance(backend, EndpointBackend):
            backend = UpstreamUrls(backend)  # gh prints GitHub's URLs, not the daemon's
        try:
            result = run_api(args, backend, environment)
        except Fallback as exc:
            raise ConfigError(f"github-p2p api: {exc}; use gh for this") from exc
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.write(result.stderr)
    return result.code
