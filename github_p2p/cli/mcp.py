"""``github-p2p mcp`` and the bootstrap node's MCP options.

Nothing here imports the MCP SDK until MCP is used: ``github-p2p mcp`` imports
:mod:`github_p2p.mcp` when it runs (exit 2 naming the extra when it is missing), and so does
``github-p2p bootstrap --mcp-token-file``; a plain hub loads it on the first ``/mcp`` request.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from github_p2p.config import ClientSettings
from github_p2p.errors import ConfigError

if TYPE_CHECKING:
    from github_p2p.nodes.mcpmount import HubMcpSettings

__all__ = ["add_hub_arguments", "hub_settings", "read_token_file", "register"]

log = logging.getLogger(__name__)

#: Shortest bearer token accepted: a guessable token on a proxied endpoint is no protection.
MIN_TOKEN_LENGTH = 16


def register(sub: Any) -> None:
    """Add ``github-p2p mcp`` to the parser."""
    mcp = sub.add_parser(
        "mcp", help="MCP server over stdio (the daemon at GITHUB_P2P_ENDPOINT when set, "
        "else an in-process cache)")
    mcp.set_defaults(func=_cmd_mcp)


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bootstrap node's ``--mcp-*`` options."""
    parser.add_argument("--mcp-token-file", type=Path, metavar="FILE",
                        help="require the bearer token in FILE on /mcp (for use behind a TLS "
                        "reverse proxy)")
    parser.add_argument("--mcp-public-url", metavar="URL",
                        help="the URL clients reach /mcp at through the reverse proxy "
                        "(default: http://127.0.0.1:HTTP_PORT/mcp)")


def _cmd_mcp(_: argparse.Namespace) -> int:
    from github_p2p.mcp.surfaces import run_stdio

    return run_stdio(os.environ)


def read_token_file(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace ignored); :class:`ConfigError`
    when it is unreadable, empty or weak. Warns when others may read the file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read --mcp-token-file {path}: {reason}") from exc
    if len(text) < MIN_TOKEN_LENGTH or not text.isprintable() or any(c.isspace() for c in text):
        raise ConfigError(f"--mcp-token-file {path} must hold one token of at least "
                          f"{MIN_TOKEN_LENGTH} printable characters and no spaces")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("--mcp-token-file %s is readable by other users; chmod 600 it", path)
    return text


def hub_settings(args: argparse.Namespace, env: Mapping[str, str], cache_dir: Path
                 ) -> HubMcpSettings:
    """How the hub serves ``/mcp``, from its options and environment.

    The hub answers ``github_get`` only when it holds the full fleet secret
    (``GITHUB_P2P_SECRET``) and a GitHub token; a blind hub (``GITHUB_P2P_NETWORK_KEY`` only)
    offers the fleet and statistics tools alone.
    """
    from github_p2p.nodes.mcpmount import HubMcpSettings

    token = read_token_file(args.mcp_token_file) if args.mcp_token_file else None
    public_url = (args.mcp_public_url or "").strip() or None
    if public_url is not None:
        if token is None:
            raise ConfigError("--mcp-public-url needs --mcp-token-file: a proxied /mcp must "
                              "require a token")
        if not public_url.startswith(("https://", "http://")):
            raise ConfigError(f"--mcp-public-url must be an http(s) URL, got {public_url!r}")
    if token is not None:
        import github_p2p.mcp  # noqa: F401  (asked for MCP: a missing extra is an error now)
    reader = keys = None
    client = ClientSettings.from_env(env)
    secret = env.get("GITHUB_P2P_SECRET", "").strip()
    if secret and client.token:
        from github_p2p.core.keys import derive_fleet_keys

        reader = replace(client, cache_dir=cache_dir / "mcp-local", endpoint=None)
        keys = derive_fleet_keys(secret, client.scope)
    return HubMcpSettings(token=token, public_url=public_url, reader=reader, keys=keys)
