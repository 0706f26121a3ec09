"""The layered cache: local store, then the fleet, then GitHub.

:class:`CacheEngine` answers one request. It is shared by the in-process Python client and the
peer daemon's HTTP proxy, and it is where every statistic is counted. Decisions come from the
pure parts (:mod:`policy`, :mod:`cachekey`, :mod:`ratelimit`); this module carries them out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from github_p2p.cache.fleet import FleetLease, LeaseOutcome, SealedFleet
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.upstream import Upstream, UpstreamResponse
from github_p2p.config import token_fingerprint
from github_p2p.core.cachekey import CacheKey, make_cache_key, resource_tags
from github_p2p.core.entry import KEPT_HEADERS, CacheEntry
from github_p2p.core.policy import TtlPolicy
from github_p2p.core.stats import Outcome, Stats
from github_p2p.errors import FleetError, UpstreamUnavailableError

__all__ = ["CACHE_HEADER", "UPSTREAM_CALLS_HEADER", "CacheEngine", "CachedResponse"]

log = logging.getLogger(__name__)

#: Response header telling how a request was answered.
CACHE_HEADER = "X-GitHub-P2P-Cache"
#: Response header telling how many calls to GitHub the answer cost (for exact accounting).
UPSTREAM_CALLS_HEADER = "X-GitHub-P2P-Upstream-Calls"
_CONDITIONAL = ("if-none-match", "if-modified-since")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "content-encoding", "host"})


@dataclass
class _KeySlot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


@dataclass(frozen=True)
class CachedResponse:
    """An answer, however it was obtained."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    outcome: Outcome
    upstream_calls: int = 0
    entry: CacheEntry | None = field(default=None, repr=False)

    def response_headers(self) -> dict[str, str]:
        """Headers to hand to a caller, with the cache outcome and the upstream cost."""
        out = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        out[CACHE_HEADER] = self.outcome.value
        out[UPSTREAM_CALLS_HEADER] = str(self.upstream_calls)
        return out


class CacheEngine:
    """Answers requests from the local store, the fleet or GitHub, counting everything."""

    def __init__(
        self,
        *,
        api_url: str,
        scope: str,
        upstream: Upstream,
        stats: Stats,
        policy: TtlPolicy | None = None,
        store: LocalStore | None = None,
        fleet: SealedFleet | None = None,
        fleet_wait: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.scope = scope
        self.upstream = upstream
        self.stats = stats
        self.policy = policy or TtlPolicy()
        self.store = store
        self.fleet = fleet
        self.fleet_wait = fleet_wait
        self._clock = clock
        self._locks: dict[str, _KeySlot] = {}
        self._locks_guard = threading.Lock()

    # -- public ------------------------------------------------------------------------------

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
        headers = dict(headers or {})
        if self.policy.bypass(method, path):
            return self._pass_through(method, path, query, headers, body, token)
        key = make_cache_key(self.api_url, method, path, query, headers, self.scope)
        # Concurrent requests for one key in this process make one trip to the fleet/GitHub.
        with self._key_lock(key.text):
            return self._get(key, path, query, headers, token)

    def invalidate(self, path: str) -> None:
        """Forget every cached variant of ``path`` and its ancestors, here and fleet-wide."""
        tags = resource_tags(self.api_url, self.scope, path)
        if self.store is not None:
            for tag in tags:
                self.store.invalidate(tag)
        if self.fleet is not None:
            try:
                self.fleet.invalidate(tags)
            except FleetError as exc:
                self.stats.add("fleet_errors")
                log.warning("fleet invalidation failed: %s", exc)

    # -- internals ---------------------------------------------------------------------------

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

    def _url(self, path: str, query: Sequence[tuple[str, str]]) -> str:
        url = self.api_url + "/" + path.lstrip("/")
        return f"{url}?{urlencode(list(query))}" if query else url

    @staticmethod
    def _auth(headers: Mapping[str, str], token: str | None) -> dict[str, str]:
        out = {k: v for k, v in headers.items()
               if k.lower() not in _HOP_BY_HOP and k.lower() != "authorization"}
        if token:
            out["Authorization"] = f"Bearer {token}"
        return out

    def _pass_through(
        self, method: str, path: str, query: Sequence[tuple[str, str]],
        headers: Mapping[str, str], body: bytes | None, token: str | None,
    ) -> CachedResponse:
        try:
            resp = self.upstream.send(method, self._url(path, query), self._auth(headers, token),
                                      body)
        except UpstreamUnavailableError as exc:
            self.stats.add("errors")
            self.stats.record(Outcome.BYPASS, exc.calls)
            raise
        finally:
            if method.upper() in _WRITES:
                # A write may have changed the resource even if the answer never reached us.
                self.invalidate(path)
        self.stats.record(Outcome.BYPASS, resp.calls)
        if resp.status >= 400:
            self.stats.add("errors")
        return CachedResponse(resp.status, resp.headers, resp.body, Outcome.BYPASS, resp.calls)

    def _from_entry(self, entry: CacheEntry, outcome: Outcome, calls: int,
                    extra: Mapping[str, str] | None = None) -> CachedResponse:
        headers = dict(entry.headers)
        headers.update(extra or {})
        self.stats.record(outcome, calls)
        return CachedResponse(entry.status, headers, entry.body, outcome, calls, entry)

    def _lease(self, key: CacheKey) -> FleetLease | None:
        if self.fleet is None:
            return None
        try:
            return self.fleet.lease(key, self.fleet_wait)
        except FleetError as exc:
            self.stats.add("fleet_errors")
            log.warning("fleet unavailable, asking GitHub directly: %s", exc)
            return None

    def _get(
        self, key: CacheKey, path: str, query: Sequence[tuple[str, str]],
        headers: Mapping[str, str], token: str | None,
    ) -> CachedResponse:
        now = self._clock()
        local = self.store.get(key.local_id) if self.store is not None else None
        if local is not None and local.is_fresh(now):
            return self._from_entry(local, Outcome.HIT_LOCAL, 0)

        lease = self._lease(key)
        # The hub's "fresh" flag is not authenticated: a hub (or a fleet member putting an old
        # envelope back) could replay an entry long after it expired. The expiry sealed inside
        # the entry is, so both must agree before an entry is served without asking GitHub.
        if lease is not None and lease.entry is not None and lease.fresh and (
            lease.entry.is_fresh(now)
        ) and lease.outcome in (LeaseOutcome.HIT, LeaseOutcome.FILLED):
            if lease.outcome is LeaseOutcome.FILLED:
                self.stats.add("coalesced_waits")
            self._store_local(key, lease.entry, now)
            return self._from_entry(lease.entry, Outcome.HIT_PEER, 0)

        candidate = local
        if lease is not None and lease.entry is not None and (
            candidate is None or lease.entry.fetched_at > candidate.fetched_at
        ):
            candidate = lease.entry
        token_owner = token_fingerprint(token) if token else None
        try:
            return self._fetch(key, path, query, headers, token, token_owner, candidate, lease)
        except BaseException:
            if lease is not None and lease.token is not None:
                self._release(key, lease.token)
            raise

    def _release(self, key: CacheKey, token: str) -> None:
        if self.fleet is None:
            return
        try:
            self.fleet.release(key, token)
        except FleetError as exc:
            self.stats.add("fleet_errors")
            log.warning("could not release a fleet lease: %s", exc)

    def _fetch(
        self, key: CacheKey, path: str, query: Sequence[tuple[str, str]],
        headers: Mapping[str, str], token: str | None, token_owner: str | None,
        candidate: CacheEntry | None, lease: FleetLease | None,
    ) -> CachedResponse:
        send_headers = self._auth(headers, token)
        if candidate is not None:
            # Our own validators only: ETags are token-specific, Last-Modified is not.
            for name in list(send_headers):
                if name.lower() in _CONDITIONAL:
                    del send_headers[name]
            if candidate.etag and candidate.etag_owner == token_owner:
                send_headers["If-None-Match"] = candidate.etag
            elif candidate.last_modified:
                send_headers["If-Modified-Since"] = candidate.last_modified
        lease_token = lease.token if lease is not None else None
        url = self._url(path, query)
        resp: UpstreamResponse | None = None
        try:
            resp = self.upstream.send("GET", url, send_headers)
            calls = resp.calls
        except UpstreamUnavailableError as exc:
            calls = exc.calls
        now = self._clock()
        if resp is None or resp.status >= 500 or resp.status in (403, 429):
            if candidate is not None and now < candidate.expires_at + self.policy.stale_if_error:
                if lease_token is not None:
                    self._release(key, lease_token)
                return self._from_entry(candidate, Outcome.STALE, calls,
                                        {"Warning": '110 - "Response is Stale"'})
            if lease_token is not None:
                self._release(key, lease_token)
            self.stats.add("errors")
            self.stats.record(Outcome.MISS, calls)
            if resp is None:
                raise UpstreamUnavailableError(f"GitHub is unreachable for {path}", calls)
            return CachedResponse(resp.status, resp.headers, resp.body, Outcome.MISS, calls)

        if resp.status == 304 and candidate is not None:
            ttl = self.policy.ttl(path, query, candidate.status) or self.policy.default_ttl
            entry = candidate.refreshed(now, ttl)
            if "etag" in resp.headers:
                entry = _with_etag(entry, resp.headers["etag"], token_owner)
            outcome = Outcome.REVALIDATED
        else:
            maybe_ttl = self.policy.ttl(path, query, resp.status)
            if maybe_ttl is None:
                if lease_token is not None:
                    self._release(key, lease_token)
                if resp.status >= 400:
                    self.stats.add("errors")
                self.stats.record(Outcome.MISS, calls)
                return CachedResponse(resp.status, resp.headers, resp.body, Outcome.MISS, calls)
            ttl = maybe_ttl
            entry = CacheEntry(
                status=resp.status,
                headers=tuple((k, v) for k, v in resp.headers.items() if k in KEPT_HEADERS),
                body=resp.body,
                fetched_at=now,
                expires_at=now + ttl,
                etag=resp.headers.get("etag"),
                etag_owner=token_owner if "etag" in resp.headers else None,
                last_modified=resp.headers.get("last-modified"),
            )
            outcome = Outcome.MISS
        self._store_local(key, entry, now)
        self._share(key, entry, ttl, lease_token)
        rate = {k: v for k, v in resp.headers.items() if k.startswith("x-ratelimit-")}
        return self._from_entry(entry, outcome, calls, rate)

    def _store_local(self, key: CacheKey, entry: CacheEntry, now: float) -> None:
        if self.store is None:
            return
        keep = max(entry.expires_at - now, 0.0) + self.policy.stale_if_error
        self.store.put(key.local_id, entry, keep_for=keep, tag=key.resource)

    def _share(self, key: CacheKey, entry: CacheEntry, ttl: float, lease_token: str | None
               ) -> None:
        if self.fleet is None:
            return
        try:
            self.fleet.put(key, entry, fresh_ttl=ttl, keep_ttl=ttl + self.policy.stale_if_error,
                           lease_token=lease_token)
        except FleetError as exc:
            self.stats.add("fleet_errors")
            log.warning("could not share an entry with the fleet: %s", exc)


def _with_etag(entry: CacheEntry, etag: str, owner: str | None) -> CacheEntry:
    return replace(entry, etag=etag, etag_owner=owner)
