"""The synchronous driver of the request flow: the in-process ``GitHubClient``'s cache.

It carries out the flow's effects with blocking I/O (the local diskcache store, GitHub through
``requests``) in the calling thread. It has no fleet: a runner's fleet lives in the daemon,
whose trio driver is :mod:`github_p2p.cache.trio_engine`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from github_p2p.cache.driver import (
    CACHE_HEADER,
    UPSTREAM_CALLS_HEADER,
    CachedResponse,
    KeyMemo,
    drive,
    fetch_upstream,
    finish,
    flow_request,
)
from github_p2p.cache.gate import RateGate
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.upstream import Upstream
from github_p2p.core.cachekey import resource_tags
from github_p2p.core.effects import (
    CheckLimit,
    Effect,
    Fetch,
    Invalidate,
    NoteLimit,
    ReadClock,
    ReadLocal,
    Wait,
    WriteLocal,
)
from github_p2p.core.flow import FlowRequest, FlowSettings, request_flow
from github_p2p.core.stats import Stats

__all__ = ["CACHE_HEADER", "UPSTREAM_CALLS_HEADER", "CacheEngine", "CachedResponse"]


@dataclass
class _KeySlot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class CacheEngine:
    """Answers requests from the local store or GitHub, counting everything."""

    def __init__(self, *, settings: FlowSettings, upstream: Upstream, stats: Stats,
                 store: LocalStore | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if settings.fleet:
            raise ValueError("the synchronous engine has no fleet; the daemon's has")
        self.settings = settings
        self.upstream = upstream
        self.stats = stats
        self.store = store
        self._clock = clock
        self._sleep = sleep
        self.gate = RateGate()
        self._locks: dict[str, _KeySlot] = {}
        self._keys = KeyMemo(settings)
        self._fingerprints: dict[str, str] = {}
        self._locks_guard = threading.Lock()

    @property
    def api_url(self) -> str:
        """The GitHub API base URL."""
        return self.settings.api_url

    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        token: str | None = None,
    ) -> CachedResponse:
        """Answer one request. ``token`` is used upstream only; it never enters a key.

        Raises :class:`UpstreamUnavailableError` only when GitHub cannot be reached and
        nothing cached can stand in.
        """
        request = flow_request(method, path, query, headers, body, token, self._fingerprints)
        key = self._keys.key(request)
        flow = request_flow(request, self.settings, key)
        perform = self._performer(request, token)
        if key is None:
            return finish(drive(flow, perform), self.stats)
        # Concurrent requests for one key in this process make one trip to GitHub.
        with self._key_lock(key.text):
            return finish(drive(flow, perform), self.stats)

    def invalidate(self, path: str) -> None:
        """Forget every cached variant of ``path`` and its ancestors."""
        self._invalidate(resource_tags(self.api_url, self.settings.scope, path))

    def _invalidate(self, resources: Sequence[str]) -> bool:
        if self.store is not None:
            for resource in resources:
                self.store.invalidate(resource)
        return True

    def _performer(self, request: FlowRequest, token: str | None
                   ) -> Callable[[Effect], Any]:
        def perform(effect: Effect) -> Any:
            if isinstance(effect, ReadClock):
                return self._clock()
            if isinstance(effect, ReadLocal):
                return self.store.get(effect.local_id) if self.store is not None else None
            if isinstance(effect, WriteLocal):
                if self.store is not None:
                    self.store.put(effect.local_id, effect.entry, keep_for=effect.keep_for,
                                   tag=effect.tag)
                return None
            if isinstance(effect, Fetch):
                return fetch_upstream(self.upstream.send, self.api_url, request, effect, token)
            if isinstance(effect, Invalidate):
                return self._invalidate(effect.resources)
            if isinstance(effect, CheckLimit):
                return self.gate.until(effect.keys, self._clock())
            if isinstance(effect, NoteLimit):
                return self.gate.note(effect.key, effect.until, self._clock())
            if isinstance(effect, Wait):
                return self._sleep(effect.seconds)
            raise TypeError(f"the synchronous engine cannot carry out {effect!r}")
        return perform

    @contextmanager
    def _key_lock(self, text: str) -> Iterator[None]:
        with self._locks_guard:
            slot = self._locks.setdefault(text, _KeySlot())
            slot.users += 1
        try:
            with slot.lock:
                yield
        finally:
            with self._locks_guard:
                slot.users -= 1
                if slot.users == 0:
                    del self._locks[text]
