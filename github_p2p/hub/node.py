"""Running a hub as a process: the service, its HTTP status endpoint, signals, ready file."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import trio

from ..httpapi import build_app
from ..registry import HubRegistrySetup
from ..runtime import serve_http, stop_on_signals, write_ready_file
from .service import HubService, HubSettings

__all__ = ["run_hub"]

log = logging.getLogger(__name__)


async def run_hub(settings: HubSettings, http_host: str, http_port: int,
                  ready_file: Path | None, *,
                  registry: HubRegistrySetup | None = None) -> None:
    """Serve a hub until SIGTERM/SIGINT or ``/_p2p/shutdown``; prints its multiaddrs.

    ``registry`` (``--registry-issue``/``--registry-dir``) announces the hub there, prunes
    expired records, and withdraws the hub's record when it stops.
    """
    hub = HubService(settings)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(hub.run)
        if registry is not None and settings.network_key is not None:
            agent = registry.agent(settings.network_key, running.peer_id, running.multiaddrs,
                                   started_at=time.time())
            hub.registry_stats = agent.stats
            await nursery.start(agent.run)
        endpoint = await serve_http(nursery, build_app(hub), http_host, http_port,
                                    hub.shutdown)
        nursery.start_soon(stop_on_signals, hub.shutdown)
        for address in running.multiaddrs:
            print(address, flush=True)
        print(f"github-p2p: hub {running.peer_id} serving; status at {endpoint}",
              file=sys.stderr, flush=True)
        write_ready_file(ready_file, {"endpoint": endpoint, "peer_id": running.peer_id,
                                      "multiaddrs": running.multiaddrs, "status": "active"})
        await hub.shutdown.wait()
        nursery.cancel_scope.cancel()
