"""Command-line glue of the registry: the ``--registry-*`` options of ``github-p2p peer`` and
``github-p2p bootstrap``, and ``github-p2p registry list``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.errors import ConfigError
from github_p2p.registry.options import HubRegistrySetup, RegistryOptions, open_registry
from github_p2p.registry.record import registry_keys

__all__ = ["add_node_arguments", "hub_setup", "options_from_args", "register"]

log = logging.getLogger(__name__)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """``--registry-issue``, ``--registry-dir`` and ``--registry-interval`` (defaults from
    ``GITHUB_P2P_REGISTRY_ISSUE``, ``GITHUB_P2P_REGISTRY_DIR``,
    ``GITHUB_P2P_REGISTRY_INTERVAL``)."""
    env = os.environ
    parser.add_argument(
        "--registry-issue", metavar="N|auto", default=env.get("GITHUB_P2P_REGISTRY_ISSUE"),
        help="announce this node in the comments of issue N of $GITHUB_REPOSITORY (auto: "
             "the issue labelled github-p2p-registry, created when missing)")
    parser.add_argument(
        "--registry-dir", metavar="DIR", default=env.get("GITHUB_P2P_REGISTRY_DIR") or None,
        help="announce this node in a directory registry instead (shared disk)")
    parser.add_argument(
        "--registry-interval", metavar="SECONDS", type=_interval,
        default=env.get("GITHUB_P2P_REGISTRY_INTERVAL") or None,
        help="seconds between registry heartbeats (default 600; records live 3 intervals)")


def options_from_args(args: argparse.Namespace, env: Mapping[str, str], *,
                      prune: bool = False) -> RegistryOptions | None:
    """The registry a node was asked to join, checked against what it needs."""
    interval = args.registry_interval
    options = RegistryOptions.from_cli(
        args.registry_issue, args.registry_dir,
        float(interval) if interval is not None else None, prune=prune)
    if options is not None and options.directory is None:
        if not env.get("GITHUB_REPOSITORY", "").strip():
            raise ConfigError("--registry-issue needs GITHUB_REPOSITORY (owner/repo)")
        if not (env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or "").strip():
            raise ConfigError("--registry-issue needs GITHUB_TOKEN (issues: write)")
    return options


def hub_setup(args: argparse.Namespace, cache_dir: Path, env: Mapping[str, str]
              ) -> HubRegistrySetup | None:
    """The bootstrap node's registry set-up; its registry client caches under ``cache_dir``."""
    options = options_from_args(args, env, prune=True)
    if options is None:
        return None
    client = replace(ClientSettings.from_env(env), endpoint=None,
                     cache_dir=cache_dir / "registry-client")
    from github_p2p.nodes.peer import runner_arch

    arch = env.get("RUNNER_ARCH") or runner_arch()
    return HubRegistrySetup(options, client, arch, socket.gethostname())


def register(sub: Any) -> None:
    """Add ``github-p2p registry list``."""
    registry = sub.add_parser("registry", help="the fleet's peer registry")
    actions = registry.add_subparsers(dest="registry_command", required=True)
    listing = actions.add_parser("list", help="live peer records as JSON")
    listing.add_argument("--issue", metavar="N|auto",
                         default=os.environ.get("GITHUB_P2P_REGISTRY_ISSUE"),
                         help="registry issue (default $GITHUB_P2P_REGISTRY_ISSUE)")
    listing.add_argument("--dir", metavar="DIR",
                         default=os.environ.get("GITHUB_P2P_REGISTRY_DIR") or None,
                         help="directory registry (default $GITHUB_P2P_REGISTRY_DIR)")
    listing.add_argument("--repo", metavar="OWNER/REPO",
                         help="repository of the registry issue (default $GITHUB_REPOSITORY)")
    listing.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    env = os.environ
    options = RegistryOptions.from_cli(args.issue, args.dir)
    if options is None:
        raise ConfigError("name the registry: --issue N|auto or --dir DIR")
    from github_p2p.config import hub_network_key

    keys = registry_keys(hub_network_key(os.environ))
    repo = (args.repo or env.get("GITHUB_REPOSITORY", "")).strip()
    client = GitHubClient.from_env() if options.directory is None else None
    registry = open_registry(options, keys=keys, client=client, repo=repo, create=False,
                             owns_client=True)
    try:
        listing = registry.scan(time.time())
    finally:
        registry.close()
    json.dump([record.to_json() for record in listing.live], sys.stdout, indent=2)
    sys.stdout.write("\n")
    counts = listing.counts()
    calls = registry.counters.get("api_calls")
    print("github-p2p: registry: " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + f" ({calls} API calls)", file=sys.stderr)
    return 0
