"""Running a hub as a process: the service, its HTTP status endpoint, signals, ready file."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from github_p2p.errors import AdmissionError, ConfigError
from github_p2p.nodes.endpoint import build_app
from github_p2p.nodes.hub.envelopes import MemoryEnvelopeStore
from github_p2p.nodes.hub.failover import FailoverHubState
from github_p2p.nodes.hub.redis_settings import RedisSettings
from github_p2p.nodes.hub.service import HubService, HubSettings
from github_p2p.nodes.hub.state import LocalHubState
from github_p2p.nodes.mcpmount import HubMcpSettings, hub_mount
from github_p2p.nodes.runtime import (
    return_large_buffers,
    serve_http,
    stop_on_signals,
    write_ready_file,
)
from github_p2p.registry import HubRegistrySetup
from github_p2p.workqueue.store import QueueStore

__all__ = ["redis_hub_state", "redis_queue_store", "run_hub"]

#: Bound on the memory a hub's fallback keeps while Redis is out of reach.
FALLBACK_BYTES = 256 * 1024 * 1024

log = logging.getLogger(__name__)


async def run_hub(settings: HubSettings, http_host: str, http_port: int,
                  ready_file: Path | None, *,
                  publish: Callable[[Sequence[str]], Mapping[str, Any]] | None = None,
                  registry: HubRegistrySetup | None = None,
                  mcp: HubMcpSettings | None = None,
                  redis: RedisSettings | None = None) -> None:
    """Serve a hub until SIGTERM/SIGINT or ``/_p2p/shutdown``; prints its multiaddrs.

    ``publish`` (``--publish-secret``) runs once the hub is listening, with its multiaddrs;
    what it returns goes into the ready file, which is written after it.
    ``registry`` (``--registry-issue``/``--registry-dir``) announces the hub there, prunes
    expired records, and withdraws the hub's record when it stops.
    ``mcp`` says how ``/mcp`` is served (default: loopback, no token, no ``github_get``).
    ``redis`` (``--redis-url``) puts the hub's state in Redis, shared with the other hubs there.
    """
    # Frames and envelopes of megabytes come and go: let their memory go back to the system.
    return_large_buffers()
    async with trio.open_nursery() as nursery:
        state = queue_store = None
        if redis is not None:
            state = redis_hub_state(settings, redis)
            await nursery.start(state.run)
            queue_store = redis_queue_store(state)
        hub = HubService(settings, state, queue_store=queue_store)
        running = await nursery.start(hub.run)
        if registry is not None and settings.network_key is not None:
            agent = registry.agent(settings.network_key, running.peer_id, running.multiaddrs,
                                   started_at=time.time())
            hub.registry_stats = agent.stats
            await nursery.start(agent.run)
        if hub.admission.verifier is not None:
            nursery.start_soon(_prepare_admission, hub)
        http_url: str | None = None
        mount = hub_mount(hub, mcp or HubMcpSettings(), lambda: http_url)
        http_url = endpoint = await serve_http(nursery, build_app(hub, mcp=mount), http_host,
                                               http_port, hub.shutdown)
        nursery.start_soon(stop_on_signals, hub.shutdown)
        for address in running.multiaddrs:
            print(address, flush=True)
        print(f"github-p2p: hub {running.peer_id} serving; status at {endpoint}",
              file=sys.stderr, flush=True)
        published: Mapping[str, Any] = {}
        if publish is not None:
            addresses = list(running.multiaddrs)
            # If the hub dies meanwhile, don't wait for GitHub (trio-typing lacks the flag).
            published = await trio.to_thread.run_sync(  # type: ignore[call-arg]
                lambda: publish(addresses), abandon_on_cancel=True)
        write_ready_file(ready_file, {"endpoint": endpoint, "peer_id": running.peer_id,
                                      "multiaddrs": running.multiaddrs, "status": hub.status,
                                      **published})
        await hub.shutdown.wait()
        nursery.cancel_scope.cancel()


def redis_hub_state(settings: HubSettings, redis: RedisSettings) -> FailoverHubState:
    """The hub's state in Redis, namespaced by its network key, with a memory fallback."""
    from github_p2p.nodes.hub.redis_state import RedisHubState  # coredis: only with Redis

    if settings.network_key is None:
        raise ConfigError("a hub on Redis needs the network key (its key namespace)")
    shared = RedisHubState(redis, settings.network_key, lease_ttl=settings.lease_ttl)
    fallback = LocalHubState(MemoryEnvelopeStore(size_limit=min(settings.size_limit,
                                                                FALLBACK_BYTES)),
                             lease_ttl=settings.lease_ttl)
    return FailoverHubState(shared, fallback, where=redis.display)


def redis_queue_store(state: FailoverHubState) -> QueueStore:
    """The work queues next to the cache in Redis, on the same connection. Queues have no
    local fallback: two copies would run items twice, so while Redis is away queue requests
    fail and runners retry (as they do while a hub restarts)."""
    from github_p2p.nodes.hub.redis_state import RedisHubState
    from github_p2p.workqueue.redisstore import RedisQueueStore

    shared = state.shared
    assert isinstance(shared, RedisHubState)
    return RedisQueueStore(lambda: shared.client, shared.keys.prefix)


async def _prepare_admission(hub: HubService) -> None:
    """Fetch the OIDC issuer's keys once at start, so a wrong ``--oidc-issuer`` shows at once
    (the hub keeps running: the issuer may only be away for a while)."""
    verifier = hub.admission.verifier
    assert verifier is not None
    try:
        await trio.to_thread.run_sync(verifier.prepare, abandon_on_cancel=True)  # type: ignore[call-arg]
    except AdmissionError as exc:
        log.warning("%s; runners are refused until it answers", exc)
    else:
        log.info("OIDC admission: issuer %s, audience %r", verifier.settings.issuer,
                 verifier.settings.audience)
