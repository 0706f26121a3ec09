"""``github-p2p peer``: one per runner.

It listens on the per-architecture libp2p port, keeps links to the bootstrap hubs, and serves
the local HTTP endpoint that other steps use. It never fails a job because the fleet is away:
with no bootstrap peers it runs ``local-only``; with none reachable it runs ``degraded`` (local
cache + GitHub) and keeps redialling in the background.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from github_p2p import __version__
from github_p2p.cache.client import GitHubClient
from github_p2p.cache.fleet import SealedFleet
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.trio_engine import ThreadBackend, TrioCacheEngine
from github_p2p.cache.upstream import Upstream
from github_p2p.config import ClientSettings
from github_p2p.core.flow import FlowSettings
from github_p2p.core.keys import derive_master_key, fleet_keys_from_master, network_key_from_master
from github_p2p.core.policy import load_policy
from github_p2p.core.ports import default_port
from github_p2p.core.sealing import FleetSeal
from github_p2p.core.stats import Stats
from github_p2p.nodes.endpoint import build_app
from github_p2p.nodes.mcpmount import daemon_mount
from github_p2p.nodes.oidc import OidcRequest, OidcTokenSource
from github_p2p.nodes.runtime import serve_http, stop_on_signals, write_ready_file
from github_p2p.p2p.host import HostSettings, running_host
from github_p2p.p2p.link import HubLink, LinkSettings
from github_p2p.p2p.messages import Hello, Scalar
from github_p2p.p2p.router import FleetRouter
from github_p2p.registry import (
    Listing,
    NodeIdentity,
    RegistryAgent,
    RegistryOptions,
    hubs_to_dial,
    node_agent,
)
from github_p2p.workqueue.daemon import DaemonQueues, build_daemon_queues
from github_p2p.workqueue.routes import queue_routes

__all__ = ["PeerDaemon", "PeerSettings", "default_port", "runner_arch"]

log = logging.getLogger(__name__)

def runner_arch() -> str:
    """This machine's architecture in ``runner.arch`` spelling (X64, ARM64, ...)."""
    machine = platform.machine().lower()
    return {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(
        machine, machine.upper() or "UNKNOWN")


@dataclass(frozen=True)
class PeerSettings:
    """How to run a runner peer."""

    client: ClientSettings
    cache_dir: Path
    secret: str | None = field(default=None, repr=False)
    bootstrap: tuple[str, ...] = ()
    listen_host: str = "0.0.0.0"
    port: int = 9000
    http_host: str = "127.0.0.1"
    http_port: int = 0
    ready_file: Path | None = None
    max_lifetime: float | None = None
    arch: str = field(default_factory=runner_arch)
    runner_name: str = field(default_factory=platform.node)
    link: LinkSettings = field(default_factory=LinkSettings)
    #: Announce this runner in a peer registry and dial the bootstrap nodes listed there.
    registry: RegistryOptions | None = None
    #: PBKDF2 iterations; only tests lower it.
    kdf_iterations: int | None = None
    #: Present a GitHub Actions OIDC token for this audience to the hubs.
    oidc: OidcRequest | None = None


class PeerDaemon:
    """A running runner peer (also the :class:`~github_p2p.nodes.endpoint.NodeView` of its
    endpoint)."""

    role = "runner"

    def __init__(self, settings: PeerSettings) -> None:
        self.settings = settings
        self.stats_counters = Stats()
        self.links: list[HubLink] = []
        self.shutdown = trio.Event()
        self.peer_id: str | None = None
        self.multiaddrs: list[str] = []
        self.endpoint: str | None = None
        self.engine: TrioCacheEngine | None = None
        self.registry: RegistryAgent | None = None
        self.queues: DaemonQueues | None = None
        self._new_link: Callable[[str], HubLink] | None = None
        self._link_nursery: trio.Nursery | None = None
        self._oidc = OidcTokenSource(settings.oidc) if settings.oidc is not None else None
        self.started_at = time.time()

    # -- NodeView ----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``local-only`` without bootstrap peers or secret, else ``active``/``degraded``."""
        if not (self.settings.bootstrap or self.settings.registry) or not self.settings.secret:
            return "local-only"
        return "active" if any(link.connected for link in self.links) else "degraded"

    def health(self) -> dict[str, Any]:
        """Liveness and fleet status."""
        return {"status": self.status, "role": self.role, "peer_id": self.peer_id,
                "endpoint": self.endpoint, "uptime": round(time.time() - self.started_at, 1),
                "connected_peers": sum(link.connected for link in self.links)}

    def stats(self) -> dict[str, Any]:
        """This runner's counters plus status and store figures."""
        out: dict[str, Any] = dict(self.stats_counters.snapshot())
        store = self.engine.store if self.engine is not None else None
        out.update(
            status=self.status, role=self.role,
            connected_peers=sum(link.connected for link in self.links),
            total_entries=len(store) if store is not None else 0,
            bytes_stored=store.volume() if store is not None else 0,
        )
        if self.registry is not None:
            out.update(self.registry.stats())
        return out

    def peers(self) -> list[dict[str, Any]]:
        """The hubs this runner knows, connected or not."""
        return [{"peer_id": link.hub_id, "role": "bootstrap", "multiaddr": link.multiaddr,
                 "connected": link.connected, "connected_since": link.connected_since,
                 "last_seen": time.time() if link.connected else None,
                 "last_error": link.last_error} for link in self.links]

    def request_shutdown(self) -> None:
        """Stop the daemon cleanly."""
        self.shutdown.set()

    # -- running -----------------------------------------------------------------------------

    def _hello(self, rid: int) -> Hello:
        return Hello(rid, "runner", self.settings.arch[:64], self.settings.runner_name[:200],
                     __version__)

    async def _credentials(self, fresh: bool) -> str | None:
        """The OIDC token for a hub's ``Hello`` (a blocking request: in a worker thread)."""
        source = self._oidc
        if source is None:
            return None
        token: str = await trio.to_thread.run_sync(lambda: source.token(fresh=fresh))
        return token

    def _report(self) -> dict[str, Scalar]:
        """Our counters for the hub's fleet totals (numbers only: the wire takes no nulls)."""
        return {name: value for name, value in self.stats_counters.snapshot().items()
                if isinstance(value, int | float) and not isinstance(value, bool)}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until shut down (signal, ``/_p2p/shutdown``, or ``max_lifetime``)."""
        s = self.settings
        kdf = {"iterations": s.kdf_iterations} if s.kdf_iterations else {}
        fleet_on = bool(s.secret and (s.bootstrap or s.registry))
        keys = network_key = None
        if fleet_on:
            master = await trio.to_thread.run_sync(
                lambda: derive_master_key(s.secret or "", **kdf))
            keys = fleet_keys_from_master(master, s.client.scope)
            network_key = network_key_from_master(master)
        store = LocalStore(s.cache_dir / "local")
        try:
            async with running_host(HostSettings(listen_host=s.listen_host, port=s.port,
                                                 psk=network_key)) as running:
                self.peer_id, self.multiaddrs = running.peer_id, running.multiaddrs
                router = FleetRouter([], s.link.request_timeout)
                fleet = None
                if fleet_on and keys is not None:
                    def new_link(addr: str) -> HubLink:
                        return HubLink(running, addr, self._hello, s.link, report=self._report,
                                       credentials=self._credentials)

                    self._new_link = new_link
                    self.links = [new_link(addr) for addr in s.bootstrap]
                    router.links = self.links
                    fleet = SealedFleet(router, FleetSeal(keys))
                self.engine = TrioCacheEngine(
                    settings=FlowSettings(api_url=s.client.api_url, scope=s.client.scope,
                                          policy=load_policy(s.client.policy_file),
                                          fleet=fleet is not None,
                                          fleet_wait=s.client.fleet_wait,
                                          retry=s.client.retry),
                    upstream=Upstream(self.stats_counters, retry=s.client.retry,
                                      timeout=s.client.timeout, user_agent=s.client.user_agent),
                    stats=self.stats_counters, store=store, fleet=fleet,
                )
                self.queues = build_daemon_queues(
                    s.cache_dir, keys, s.client.scope, lambda: self.links,
                    holder=s.runner_name, request_timeout=s.link.request_timeout)
                if fleet_on and s.registry is not None and network_key is not None:
                    # Registry calls go through our own engine: cached, shared and counted.
                    self.registry = node_agent(
                        s.registry, network_key=network_key, repo=s.client.scope,
                        client=GitHubClient(ThreadBackend(
                            self.engine, s.client.token, trio.lowlevel.current_trio_token())),
                        identity=NodeIdentity(running.peer_id, tuple(running.multiaddrs),
                                              self.role, s.arch, s.runner_name, self.started_at),
                        on_listing=self._discovered)
                async with trio.open_nursery() as nursery:
                    await self._start_links(nursery, self.links)
                    if self.registry is not None:
                        # The first beat reads the registry (through the fleet when linked);
                        # bootstrap nodes it lists count towards the status we start with.
                        known = len(self.links)
                        await nursery.start(self.registry.run)
                        await self._start_links(nursery, self.links[known:])
                    self._link_nursery = nursery
                    app = build_app(self, engine=self.engine,
                                    default_token=lambda: s.client.token,
                                    mcp=daemon_mount(self),
                                    extra_routes=queue_routes(self.queues))
                    http_stopped = trio.Event()
                    self.endpoint = await serve_http(nursery, app, s.http_host, s.http_port,
                                                     self.shutdown, http_stopped)
                    nursery.start_soon(stop_on_signals, self.shutdown)
                    if s.max_lifetime:
                        nursery.start_soon(self._expire, s.max_lifetime)
                    write_ready_file(s.ready_file, self.ready_document())
                    task_status.started(self)
                    self._announce()
                    await self.shutdown.wait()
                    # hypercorn drains in-flight requests on the same event (the shutdown
                    # request's own answer among them); then the links can go.
                    with trio.move_on_after(5):
                        await http_stopped.wait()
                    nursery.cancel_scope.cancel()
        finally:
            store.close()
            if self.queues is not None:
                self.queues.close()

    def ready_document(self) -> dict[str, Any]:
        """What ``--ready-file`` holds."""
        return {"endpoint": self.endpoint, "peer_id": self.peer_id,
                "multiaddrs": self.multiaddrs, "status": self.status,
                "connected_peers": sum(link.connected for link in self.links),
                "pid": os.getpid()}

    def _announce(self) -> None:
        status = self.status
        if status == "degraded":
            log.warning("no bootstrap peer is reachable; serving from the local cache and "
                        "GitHub directly, and retrying in the background")
        log.info("peer %s ready at %s (%s)", self.peer_id, self.endpoint, status)

    def _discovered(self, listing: Listing) -> None:
        """Link to the bootstrap nodes the registry lists and we are not connected to (new
        ones, or known ones at a new address)."""
        if self._new_link is None:
            return
        for addr in hubs_to_dial(listing.live, known_addrs=[link.multiaddr for link in self.links],
                                 connected_hubs=[link.hub_id for link in self.links
                                                 if link.connected],
                                 own_peer_id=self.peer_id):
            link = self._new_link(addr)
            self.links.append(link)
            log.info("the registry lists bootstrap node %s; linking to it", addr)
            # Before start-up is over, run() starts the new links and waits for them.
            if self._link_nursery is not None:
                self._link_nursery.start_soon(link.run)

    async def _start_links(self, nursery: trio.Nursery, links: Sequence[HubLink]) -> None:
        """Start ``links`` and wait until each has made its first attempt (in parallel)."""
        remaining = len(links)
        all_tried = trio.Event()
        if remaining == 0:
            return

        async def start(link: HubLink) -> None:
            nonlocal remaining
            await nursery.start(link.run)
            remaining -= 1
            if remaining == 0:
                all_tried.set()

        for link in links:
            nursery.start_soon(start, link)
        with trio.move_on_after(self.settings.link.dial_timeout + 1):
            await all_tried.wait()

    async def _expire(self, seconds: float) -> None:
        await trio.sleep(seconds)
        log.warning("max lifetime of %.0f s reached; stopping", seconds)
        self.shutdown.set()
