"""The daemon's driver of the request flow, native to trio.

The fleet path stays on the trio loop (the libp2p links live there); blocking work goes to a
worker thread in one place each: GitHub over ``requests`` and the local diskcache store. A hot
in-memory front answers recent local entries without leaving the loop, and a write of an entry
reaches the front at once and the disk in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from github_p2p.cache.driver import (
    CachedResponse,
    KeyMemo,
    drive_async,
    fetch_upstream,
    finish,
    flow_request,
)
from github_p2p.cache.fleet import SealedFleet
from github_p2p.cache.gate import RateGate
from github_p2p.cache.hotstore import HotFront
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.upstream import Upstream
from github_p2p.core.cachekey import resource_tags
from github_p2p.core.effects import (
    AskFleet,
    CheckLimit,
    Effect,
    Fetch,
    Invalidate,
    NoteLimit,
    ReadClock,
    ReadLocal,
    Release,
    Share,
    Wait,
    WriteLocal,
)
from github_p2p.core.entry import CacheEntry
from github_p2p.core.flow import FlowRequest, FlowSettings, request_flow
from github_p2p.core.stats import Stats

__all__ = ["ThreadBackend", "TrioCacheEngine"]

#: Memory a daemon spends on recently used entries.
DEFAULT_HOT_BYTES = 32 * 1024 * 1024
#: How long a lease is given back for when the request that held it was cancelled.
_RELEASE_GRACE = 5.0


@dataclass
class _KeySlot:
    lock: trio.Lock = field(default_factory=trio.Lock)
    users: int = 0


class TrioCacheEngine:
    """Answers requests from memory, the local store, the fleet or GitHub (async)."""

    def __init__(self, *, settings: FlowSettings, upstream: Upstream, stats: Stats,
                 store: LocalStore, fleet: SealedFleet | None = None,
                 hot_bytes: int = DEFAULT_HOT_BYTES, clock: Callable[[], float] = time.time
                 ) -> None:
        if settings.fleet != (fleet is not None):
            raise ValueError("settings.fleet must say whether a fleet is given")
        self.settings = settings
        self.upstream = upstream
        self.stats = stats
        self.store = store
        self.fleet = fleet
        self.hot: HotFront[CacheEntry] = HotFront(hot_bytes, lambda entry: entry.size)
        self._clock = clock
        self.gate = RateGate()
        self._locks: dict[str, _KeySlot] = {}
        self._keys = KeyMemo(settings)
        self._fingerprints: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        """The GitHub API base URL."""
        return self.settings.api_url

    async def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        token: str | None = None,
    ) -> CachedResponse:
        """Answer one request (see :meth:`CacheEngine.handle`)."""
        request = flow_request(method, path, query, headers, body, token, self._fingerprints)
        key = self._keys.key(request)
        flow = request_flow(request, self.settings, key)
        perform = self._performer(request, token)
        if key is None:
            return finish(await drive_async(flow, perform), self.stats)
        # Concurrent requests for one key in this daemon make one trip to the fleet/GitHub.
        with self._key_slot(key.text) as slot:
            async with slot.lock:
                return finish(await drive_async(flow, perform), self.stats)

    async def invalidate(self, path: str) -> None:
        """Forget every cached variant of ``path`` and its ancestors, here and fleet-wide."""
        if not await self._invalidate(resource_tags(self.api_url, self.settings.scope, path)):
            self.stats.add("fleet_errors")

    async def _invalidate(self, resources: Sequence[str]) -> bool:
        for resource in resources:
            self.hot.discard_tag(resource)
        await trio.to_thread.run_sync(self._invalidate_disk, resources)
        return await self.fleet.invalidate(resources) if self.fleet is not None else True

    def _invalidate_disk(self, resources: Sequence[str]) -> None:
        for resource in resources:
            self.store.invalidate(resource)

    async def _read_local(self, local_id: str) -> CacheEntry | None:
        entry = self.hot.get(local_id, self._clock())
        if entry is not None:
            return entry
        entry = await trio.to_thread.run_sync(self.store.get, local_id)
        if entry is not None:
            self.hot.put(local_id, entry, keep_until=entry.expires_at
                         + self.settings.policy.stale_if_error)
        return entry

    async def _write_local(self, effect: WriteLocal) -> None:
        self.hot.put(effect.local_id, effect.entry, keep_until=self._clock() + effect.keep_for,
                     tag=effect.tag)
        await trio.to_thread.run_sync(
            lambda: self.store.put(effect.local_id, effect.entry, keep_for=effect.keep_for,
                                   tag=effect.tag))

    def _performer(self, request: FlowRequest, token: str | None
                   ) -> Callable[[Effect], Awaitable[Any]]:
        async def perform(effect: Effect) -> Any:
            if isinstance(effect, ReadClock):
                return self._clock()
            if isinstance(effect, ReadLocal):
                return await self._read_local(effect.local_id)
            if isinstance(effect, WriteLocal):
                return await self._write_local(effect)
            if isinstance(effect, Fetch):
                return await trio.to_thread.run_sync(
                    fetch_upstream, self.upstream.send, self.api_url, request, effect, token)
            if isinstance(effect, Invalidate):
                return await self._invalidate(effect.resources)
            if isinstance(effect, CheckLimit):
                now = self._clock()
                if self.fleet is not None:
                    self.gate.merge(self.fleet.limits(), now)
                return self.gate.until(effect.keys, now)
            if isinstance(effect, NoteLimit):
                self.gate.note(effect.key, effect.until, self._clock())
                if effect.shared and self.fleet is not None:
                    await self.fleet.note_limit(effect.key, effect.until)
                return None
            if isinstance(effect, Wait):
                return await trio.sleep(effect.seconds)
            fleet = self.fleet
            if fleet is None:
                raise TypeError(f"no fleet to carry out {effect!r}")
            if isinstance(effect, AskFleet):
                return await fleet.ask(effect.key, effect.wait)
            if isinstance(effect, Share):
                return await fleet.share(effect.key, effect.entry, effect.fresh_ttl,
                                         effect.keep_ttl, effect.lease)
            if isinstance(effect, Release):
                # Also after a cancellation: the waiters at the hub must not sit out the lease.
                with trio.CancelScope(shield=True), trio.move_on_after(_RELEASE_GRACE):
                    return await fleet.release(effect.key, effect.lease)
                return False
            raise TypeError(f"unknown effect {effect!r}")
        return perform

    @contextmanager
    def _key_slot(self, text: str) -> Iterator[_KeySlot]:
        slot = self._locks.setdefault(text, _KeySlot())
        slot.users += 1
        try:
            yield slot
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._locks[text]


class ThreadBackend:
    """A :class:`~github_p2p.cache.client.GitHubClient` backend for the daemon's own blocking
    code running in worker threads (the peer registry's heartbeat): each request is answered
    by the daemon's engine on its trio loop."""

    def __init__(self, engine: TrioCacheEngine, token: str | None,
                 trio_token: trio.lowlevel.TrioToken) -> None:
        self.engine = engine
        self.base_url = engine.api_url
        self._token = token
        self._trio_token = trio_token

    def send(self, method: str, path: str, query: Sequence[tuple[str, str]],
             headers: Mapping[str, str], body: bytes | None) -> CachedResponse:
        """Answer through the daemon's engine."""
        return trio.from_thread.run(self.engine.handle, method, path, query, headers, body,
                                    self._token, trio_token=self._trio_token)

    def stats(self) -> dict[str, Any]:
        """The daemon's counters."""
        return dict(self.engine.stats.snapshot())

    def close(self) -> None:
        """Nothing to release: the daemon owns the engine."""
