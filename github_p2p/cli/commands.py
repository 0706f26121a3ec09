"""Subcommands beyond ``api``: registered here so cli.py stays a thin dispatcher."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import requests

from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.cli import mcp as mcp_cli
from github_p2p.cli import queue as queue_cli
from github_p2p.cli import registry as registry_cli
from github_p2p.cli.gh import command as gh_cli
from github_p2p.config import (
    ClientSettings,
    default_cache_dir,
    hub_network_key,
    resolve_secret,
)
from github_p2p.core.ports import HUB_HTTP_PORT, HUB_PORT, default_http_port
from github_p2p.errors import ConfigError, GitHubP2PError

__all__ = ["register"]

log = logging.getLogger(__name__)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def register(sub: Any) -> None:
    """Add the fleet subcommands to the ``github-p2p`` parser."""
    peer = sub.add_parser("peer", help="run a runner peer daemon in the foreground")
    peer.add_argument("--port", type=int, help="libp2p port (default by runner arch: "
                      "X64 9000, ARM64 9001, else 9002)")
    peer.add_argument("--listen-host", default="0.0.0.0")
    peer.add_argument("--bootstrap", help="bootstrap multiaddrs (default: "
                      "$MCP_P2P_BOOTSTRAP_PEERS)")
    peer.add_argument("--http-port", type=int,
                      help="local endpoint port on 127.0.0.1 (default: port - 300)")
    peer.add_argument("--cache-dir", type=Path)
    peer.add_argument("--ready-file", type=Path)
    peer.add_argument("--max-lifetime", type=_positive, metavar="SECONDS")
    registry_cli.add_node_arguments(peer)
    peer.set_defaults(func=_cmd_peer)

    hub = sub.add_parser("bootstrap", help="run a bootstrap node (the fleet's hub)")
    hub.add_argument("--port", type=int, default=HUB_PORT)
    hub.add_argument("--listen-host", default="0.0.0.0")
    hub.add_argument("--identity", type=Path, help="identity key file (default: "
                     "CACHE_DIR/identity.key)")
    hub.add_argument("--http-port", type=int, default=HUB_HTTP_PORT)
    hub.add_argument("--http-host", default="127.0.0.1")
    hub.add_argument("--cache-dir", type=Path)
    hub.add_argument("--public-ip", help="address to advertise in the printed multiaddr")
    hub.add_argument("--ready-file", type=Path)
    hub.add_argument("--size-limit-mb", type=int, default=1024)
    hub.add_argument("--oidc-audience", metavar="AUD",
                     help="admit only runners presenting a GitHub Actions OIDC token for AUD, "
                     "each bound to the repository the token names")
    hub.add_argument("--oidc-issuer", metavar="URL",
                     help="the OIDC issuer to trust (default "
                     "https://token.actions.githubusercontent.com)")
    hub.add_argument("--publish-secret", metavar="OWNER/REPO",
                     help="once listening, set the repository's MCP_P2P_BOOTSTRAP_PEERS secret "
                     "to this node's --public-ip multiaddr (token: GITHUB_TOKEN/GH_TOKEN)")
    hub.add_argument("--redis-url", metavar="URL",
                     help="share the hub state with other hubs in Redis: redis://[USER[:PASS]@]"
                     "HOST[:PORT][/DB] or rediss:// (TLS); the password may come from "
                     "GITHUB_P2P_REDIS_PASSWORD instead")
    registry_cli.add_node_arguments(hub)
    mcp_cli.add_hub_arguments(hub)
    hub.set_defaults(func=_cmd_bootstrap)

    network_key = sub.add_parser(
        "network-key", help="print the network key a blind hub needs (from GITHUB_P2P_SECRET)")
    network_key.set_defaults(func=_cmd_network_key)

    address = sub.add_parser("address", help="print this bootstrap node's multiaddr(s)")
    address.add_argument("--identity", type=Path)
    address.add_argument("--cache-dir", type=Path)
    address.add_argument("--port", type=int, default=HUB_PORT)
    address.add_argument("--public-ip")
    address.set_defaults(func=_cmd_address)

    stats = sub.add_parser("stats", help="statistics of the running local daemon")
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--endpoint", help="default: $GITHUB_P2P_ENDPOINT")
    stats.set_defaults(func=_cmd_stats)

    stop = sub.add_parser("stop", help="stop the running local daemon")
    stop.add_argument("--endpoint", help="default: $GITHUB_P2P_ENDPOINT")
    stop.add_argument("--timeout", type=_positive, default=15.0)
    stop.set_defaults(func=_cmd_stop)

    demo = sub.add_parser("demo", help="a whole fleet on this machine against a simulated API")
    demo.add_argument("--runners", type=int, default=4)
    demo.add_argument("--resources", type=int, default=40)
    demo.add_argument("--latency", type=float, default=0.1, help="simulated GitHub latency (s)")
    demo.set_defaults(func=_cmd_demo)

    registry_cli.register(sub)
    gh_cli.register(sub)
    mcp_cli.register(sub)
    queue_cli.register(sub)


# -- daemons ---------------------------------------------------------------------------------

def _cache_dir(arg: Path | None) -> Path:
    return arg if arg is not None else default_cache_dir(os.environ)


#: What the daemons import beyond the base install (the ``fleet`` extra).
_FLEET_MODULES = ("trio", "libp2p", "hypercorn", "starlette", "prometheus_client")


def _fleet_ready(command: str) -> None:
    """Fail in one line when the ``fleet`` extra is missing; else keep QUIC unloaded.

    The base install is the client only. The daemons need the extra; rather than a traceback
    from deep in an import, say what to install. Then, before anything imports libp2p, put the
    QUIC stand-ins in place (``github_p2p.p2p.noquic``): the daemons speak TCP only.
    """
    missing = [name for name in _FLEET_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"github-p2p {command} needs the fleet extra (missing: "
                          f"{', '.join(missing)}): pip install 'github-p2p[fleet]'")
    from github_p2p.p2p.noquic import keep_quic_unloaded

    keep_quic_unloaded()


def _cmd_peer(args: argparse.Namespace) -> int:
    _fleet_ready("peer")
    # Validate the configuration before the slow imports (libp2p takes a second or more).
    raw = args.bootstrap if args.bootstrap is not None else os.environ.get(
        "MCP_P2P_BOOTSTRAP_PEERS", "")
    bootstrap = _bootstrap_peers(raw)

    import trio

    from github_p2p.nodes.peer import PeerDaemon, PeerSettings, default_port, runner_arch
    from github_p2p.nodes.runtime import settle_heap

    arch = os.environ.get("RUNNER_ARCH") or runner_arch()
    port = args.port if args.port is not None else default_port(arch)
    http_port = args.http_port if args.http_port is not None else default_http_port(port)
    if http_port == port != 0:  # 0 is "any free port" for each, which never collide
        raise ConfigError(f"--port and --http-port must differ (both {port})")
    from github_p2p.nodes.oidc import OidcRequest

    secret = resolve_secret(os.environ)
    oidc, oidc_warning = OidcRequest.from_env(os.environ)
    if oidc_warning and bootstrap:
        print(f"github-p2p: warning: {oidc_warning}", file=sys.stderr)
    registry = registry_cli.options_from_args(args, os.environ)
    if registry is not None and not secret.secret:
        print("github-p2p: warning: no fleet secret; not joining the peer registry",
              file=sys.stderr)
        registry = None
    if secret.warning and (bootstrap or registry):
        log.warning("%s", secret.warning)
        print(f"github-p2p: warning: {secret.warning}", file=sys.stderr)
    client = ClientSettings.from_env()
    settings = PeerSettings(
        client=client, cache_dir=_cache_dir(args.cache_dir), secret=secret.secret,
        bootstrap=bootstrap, listen_host=args.listen_host, port=port, http_port=http_port,
        ready_file=args.ready_file, max_lifetime=args.max_lifetime, arch=arch,
        runner_name=os.environ.get("RUNNER_NAME") or socket.gethostname(),
        registry=registry, oidc=oidc,
    )
    daemon = PeerDaemon(settings)
    settle_heap()
    trio.run(daemon.run)
    return 0


def _bootstrap_peers(raw: str) -> tuple[str, ...]:
    """The usable bootstrap peers of ``raw``; each malformed entry is named in a warning, and
    only a list with no usable entry at all is a configuration error."""
    from github_p2p.p2p.addresses import split_bootstrap_peers

    peers = split_bootstrap_peers(raw)
    if peers.bad and not peers.good:
        raise ConfigError(peers.bad[0][1])
    for _, reason in peers.bad:
        print(f"github-p2p: warning: ignoring a bootstrap peer: {reason}", file=sys.stderr)
    return peers.good


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    _fleet_ready("bootstrap")
    import trio

    from github_p2p.nodes.hub.admission import GITHUB_ISSUER, OidcSettings
    from github_p2p.nodes.hub.node import run_hub
    from github_p2p.nodes.hub.service import HubSettings
    from github_p2p.nodes.runtime import settle_heap

    cache_dir = _cache_dir(args.cache_dir)
    oidc = None
    if args.oidc_audience is not None:
        oidc = OidcSettings(args.oidc_audience, args.oidc_issuer or GITHUB_ISSUER)
    elif args.oidc_issuer is not None:
        raise ConfigError("--oidc-issuer needs --oidc-audience")
    redis = _redis_settings(args.redis_url) if args.redis_url else None
    settings = HubSettings(
        cache_dir=cache_dir, network_key=hub_network_key(os.environ),
        listen_host=args.listen_host, port=args.port,
        identity_file=str(args.identity or cache_dir / "identity.key"),
        public_ip=args.public_ip, size_limit=args.size_limit_mb * 1024 * 1024, oidc=oidc,
    )
    publish = None
    if args.publish_secret:
        from github_p2p.nodes.hub.publish import publisher_from_env

        publish = publisher_from_env(args.publish_secret, args.public_ip, os.environ)
    registry = registry_cli.hub_setup(args, cache_dir, os.environ)
    mcp = mcp_cli.hub_settings(args, os.environ, cache_dir)
    settle_heap()
    trio.run(functools.partial(run_hub, settings, args.http_host, args.http_port,
                               args.ready_file, publish=publish, registry=registry, mcp=mcp,
                               redis=redis))
    return 0


def _redis_settings(url: str) -> Any:
    """``--redis-url`` validated, and Redis looked at once: refused credentials are a
    configuration error; an unreachable Redis only a warning (the hub starts degraded)."""
    import trio

    from github_p2p.nodes.hub.redis_settings import RedisSettings

    redis = RedisSettings.from_url(url, os.environ)
    try:
        from github_p2p.nodes.hub.redis_preflight import preflight
    except ImportError as exc:
        raise ConfigError("--redis-url needs coredis: pip install 'github-p2p[redis]'") from exc
    redis.client_options()  # TLS files are readable
    found = trio.run(preflight, redis)
    for warning in found.warnings:
        print(f"github-p2p: warning: {warning}", file=sys.stderr)
    if found.unreachable:
        print(f"github-p2p: warning: Redis at {redis.display} is unreachable "
              f"({found.unreachable}); the hub starts degraded and keeps trying",
              file=sys.stderr)
    return redis


def _cmd_network_key(_: argparse.Namespace) -> int:
    from github_p2p.core.keys import derive_network_key

    secret = os.environ.get("GITHUB_P2P_SECRET", "").strip()
    if not secret:
        raise ConfigError("set GITHUB_P2P_SECRET: the network key is derived from it")
    # Give it to a blind hub as GITHUB_P2P_NETWORK_KEY: it joins the fleet's private network
    # but cannot open a single entry.
    print(derive_network_key(secret).hex())
    return 0


def _cmd_address(args: argparse.Namespace) -> int:
    _fleet_ready("address")
    from libp2p.peer.id import ID as PeerID

    from github_p2p.p2p.addresses import is_host, tcp_multiaddr
    from github_p2p.p2p.identity import load_or_create_identity

    cache_dir = _cache_dir(args.cache_dir)
    keypair = load_or_create_identity(args.identity or cache_dir / "identity.key")
    peer_id = PeerID.from_pubkey(keypair.public_key).to_base58()
    hosts = [args.public_ip] if args.public_ip else _local_addresses()
    for host in hosts:
        if not is_host(host):
            raise ConfigError(f"--public-ip {host!r} is not an IP address or DNS name")
        print(f"{tcp_multiaddr(host, args.port)}/p2p/{peer_id}")
    if not args.public_ip:
        print("github-p2p: pass --public-ip with the address runners can reach",
              file=sys.stderr)
    return 0


def _local_addresses() -> list[str]:
    found: list[str] = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if address not in found:
                found.append(address)
    except OSError:
        pass
    return found or ["127.0.0.1"]


# -- talking to a running daemon -------------------------------------------------------------

def _endpoint(arg: str | None) -> str:
    endpoint = (arg or os.environ.get("GITHUB_P2P_ENDPOINT", "")).strip().rstrip("/")
    if not endpoint:
        raise ConfigError("no daemon endpoint: set GITHUB_P2P_ENDPOINT or pass --endpoint")
    return endpoint


def _cmd_stats(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.endpoint)
    try:
        data = requests.get(f"{endpoint}/_p2p/stats", timeout=10).json()
    except (requests.RequestException, ValueError) as exc:
        raise GitHubP2PError(f"no github-p2p daemon answers at {endpoint}") from exc
    if args.json:
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
        return 0
    width = max(len(k) for k in data)
    for key, value in data.items():
        print(f"{key:<{width}}  {value}")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.endpoint)
    try:
        requests.post(f"{endpoint}/_p2p/shutdown", headers={CONTROL_HEADER: "1"}, timeout=10)
    except requests.RequestException as exc:
        raise GitHubP2PError(f"no github-p2p daemon answers at {endpoint}") from exc
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"{endpoint}/_p2p/health", timeout=1)
        except requests.RequestException:
            return 0
        time.sleep(0.1)
    raise GitHubP2PError(f"the daemon at {endpoint} did not stop within {args.timeout:g} s")


def _cmd_demo(args: argparse.Namespace) -> int:
    _fleet_ready("demo")
    from github_p2p.cli.demo import run_demo

    return run_demo(runners=args.runners, resources=args.resources, latency=args.latency)
