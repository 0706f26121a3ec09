"""Shared helpers of the Redis tests; this module holds no tests.

States run against a real ``redis-server`` (the ``redis_server`` fixture of conftest.py) with a
fast heartbeat, so a hub that stops answering is noticed within about a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from github_p2p.nodes.hub.envelopes import MemoryEnvelopeStore
from github_p2p.nodes.hub.failover import FailoverHubState
from github_p2p.nodes.hub.redis_settings import RedisKeys, RedisSettings, fleet_namespace
from github_p2p.nodes.hub.redis_state import RedisHubState, redis_client
from github_p2p.nodes.hub.state import LocalHubState
from github_p2p.workqueue.redisstore import RedisQueueStore

#: The network key of the test fleet (its Redis namespace derives from it).
KEY = bytes(range(100, 132))
FAST = {"heartbeat": 0.2, "hub_ttl": 1.0, "op_timeout": 2.0, "figures_interval": 0.5}


def settings(url: str, **overrides: Any) -> RedisSettings:
    """Settings for ``url`` with the fast test timings."""
    return RedisSettings.from_url(url, {}, **{**FAST, **overrides})


@asynccontextmanager
async def redis_states(url: str, count: int = 1, *, lease_ttl: float = 30.0,
                       key: bytes = KEY, **overrides: Any) -> AsyncIterator[list[RedisHubState]]:
    """``count`` hubs' states on one Redis, running until the block ends."""
    extra = {"workarounds": overrides.pop("workarounds")} if "workarounds" in overrides else {}
    states = [RedisHubState(settings(url, **overrides), key, lease_ttl=lease_ttl, **extra)
              for _ in range(count)]
    async with trio.open_nursery() as nursery:
        for state in states:
            await nursery.start(state.run)
        try:
            yield states
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def failover_state(url: str, *, lease_ttl: float = 30.0, key: bytes = KEY,
                         **overrides: Any) -> AsyncIterator[FailoverHubState]:
    """A hub's Redis state with its memory fallback, running until the block ends."""
    state = FailoverHubState(
        RedisHubState(settings(url, **overrides), key, lease_ttl=lease_ttl),
        LocalHubState(MemoryEnvelopeStore(), lease_ttl=lease_ttl), where=url)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        try:
            yield state
        finally:
            nursery.cancel_scope.cancel()


async def eventually(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` (sync or async) until true; fail naming ``what`` after ``timeout``."""
    with trio.move_on_after(timeout):
        while True:
            result = condition()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await trio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@asynccontextmanager
async def redis_queue_store(url: str, key: bytes = KEY) -> AsyncIterator[RedisQueueStore]:
    """A Redis queue store on its own client, for the block."""
    async with redis_client(settings(url)) as client:
        yield RedisQueueStore(lambda: client, RedisKeys(fleet_namespace(key)).prefix)
