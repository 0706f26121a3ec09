"""The layered cache's decisions, as a pure generator (sans-I/O).

:func:`request_flow` answers one request. It yields effects (:mod:`github_p2p.core.effects`):
read the clock, read the local store, ask the fleet for the entry or a fill lease, fetch from
GitHub with the right validators, keep the answer locally, share it, give a lease back,
invalidate. Its driver carries each effect out and sends the result back in; the generator
returns an :class:`~github_p2p.core.effects.Answer`. Nothing here blocks, so the same decisions
run in the synchronous in-process client and on the daemon's trio loop, and tests step through
them with plain values.

The lease rule lives here and nowhere else: a granted lease is consumed exactly once, by the
share that fills it or by a release, on every path, including a driver that throws an error or
a cancellation into the flow.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from github_p2p.core.cachekey import CacheKey, make_cache_key, resource_tags
from github_p2p.core.effects import (
    Answer,
    AskFleet,
    CheckLimit,
    Effect,
    Fetch,
    Fetched,
    FleetReply,
    Invalidate,
    NoteLimit,
    ReadClock,
    ReadLocal,
    Release,
    Share,
    ShareResult,
    Wait,
    WriteLocal,
)
from github_p2p.core.entry import KEPT_HEADERS, CacheEntry
from github_p2p.core.graphql_cache import (
    GraphQLKey,
    graphql_answer_cacheable,
    graphql_key,
    graphql_write_tags,
    is_graphql,
    rest_write_graphql_tags,
)
from github_p2p.core.lease import Lease, LeaseOutcome
from github_p2p.core.pagination import link_targets
from github_p2p.core.policy import CACHEABLE_STATUSES, NEGATIVE_STATUSES, Sharing, TtlPolicy
from github_p2p.core.ratelimit import RetrySettings, api_resource, limit_until, rate_limit_kind
from github_p2p.core.sealing import MAX_PLAINTEXT
from github_p2p.core.stats import Outcome

__all__ = [
    "Flow",
    "FlowRequest",
    "FlowSettings",
    "admit_peer_entry",
    "cache_key",
    "conditional_headers",
    "request_flow",
]

#: A flow: yields effects, is sent their results, returns the answer.
Flow = Generator[Effect, Any, Answer]

_CONDITIONAL = ("if-none-match", "if-modified-since")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STALE_WARNING = {"Warning": '110 - "Response is Stale"'}


@dataclass(frozen=True)
class FlowSettings:
    """What a flow needs to know about its cache (a value, validated once)."""

    api_url: str
    scope: str = ""
    policy: TtlPolicy = field(default_factory=TtlPolicy)
    #: Whether a fleet is configured at all (a runner linked to hubs).
    fleet: bool = False
    #: Longest a request waits at the hub for another runner's fill of the same resource.
    fleet_wait: float = 15.0
    #: Larger answers are served but not kept locally.
    max_local_entry: int = 64 * 1024 * 1024
    #: Larger answers are served (and kept locally) but not shared.
    max_shared_entry: int = MAX_PLAINTEXT
    #: How rate limits are waited out: ``max_wait`` bounds a wait, ``secondary_floor`` is the
    #: wait after a secondary limit that names none.
    retry: RetrySettings = field(default_factory=RetrySettings)
    #: Probes sent after a rate limit lifted, before its answer is passed on.
    limit_retries: int = 2

    @property
    def max_limit_wait(self) -> float:
        """The longest a request waits for a rate limit to lift."""
        return self.retry.max_wait

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))
        if self.fleet_wait < 0 or self.max_local_entry < 0 or self.max_shared_entry < 0:
            raise ValueError("flow limits must be non-negative")


@dataclass(frozen=True)
class FlowRequest:
    """One request as the cache sees it. ``headers`` never carry credentials; ``caller`` is
    the one-way fingerprint of the token that will be used upstream (``None``: anonymous)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = field(default=None, repr=False)
    caller: str | None = field(default=None, repr=False)


def request_flow(request: FlowRequest, settings: FlowSettings, key: CacheKey | None = None
                 ) -> Flow:
    """The flow that answers ``request``: cached when ``key`` (see :func:`cache_key`) is
    given, else passed through (and, for a write, invalidating what it may have changed)."""
    if key is None:
        return _pass_through(request, settings)
    return _cached(request, settings, key)


def cache_key(request: FlowRequest, settings: FlowSettings) -> CacheKey | None:
    """The key of a cacheable request, private to the caller for caller-specific families;
    ``None`` when the policy says the request goes straight to GitHub. A GraphQL query gets a
    :class:`~github_p2p.core.graphql_cache.GraphQLKey` (see that module)."""
    if is_graphql(request.method, request.path):
        return graphql_key(request.body, request.headers, settings.api_url, settings.scope,
                           request.caller)
    if settings.policy.bypass(request.method, request.path):
        return None
    private = settings.policy.sharing(request.path) is Sharing.TOKEN
    return make_cache_key(settings.api_url, request.method, request.path, request.query,
                          request.headers, settings.scope,
                          owner=(request.caller or "anonymous") if private else None)


# --- pass-through --------------------------------------------------------------------------


def _pass_through(request: FlowRequest, settings: FlowSettings) -> Flow:
    fetched: Fetched = yield Fetch(request.method, request.headers, request.body)
    notes: list[str] = []
    tags = _write_tags(request, settings)
    if tags:
        # A write may have changed the resource even if its answer never reached us.
        told: bool = yield Invalidate(tags)
        if not told:
            notes.append("fleet_errors")
    if fetched.status is None:
        return Answer(502, {}, b"", Outcome.BYPASS, fetched.calls, notes=(*notes, "errors"),
                      error=f"GitHub is unreachable for {request.path}")
    if fetched.status >= 400:
        notes.append("errors")
    return Answer(fetched.status, dict(fetched.headers), fetched.body, Outcome.BYPASS,
                  fetched.calls, notes=tuple(notes))


def _write_tags(request: FlowRequest, settings: FlowSettings) -> tuple[str, ...]:
    """What a request passed through may have changed (nothing for a read or a GraphQL query)."""
    if is_graphql(request.method, request.path):
        return graphql_write_tags(request.body, settings.api_url, settings.scope)
    if request.method.upper() not in _WRITES:
        return ()
    return (*resource_tags(settings.api_url, settings.scope, request.path),
            *rest_write_graphql_tags(request.path, settings.api_url, settings.scope))


# --- the cached path -------------------------------------------------------------------------


def _cached(request: FlowRequest, settings: FlowSettings, key: CacheKey) -> Flow:
    notes: list[str] = []
    now: float = yield ReadClock()
    local: CacheEntry | None = yield ReadLocal(key.local_id)
    if local is not None and not local.serves(request.caller):
        local = None  # another token's negative answer: not ours to see
    if local is not None and local.is_fresh(now):
        return _serve(local, Outcome.HIT_LOCAL, 0, notes)

    candidate, held = local, None
    if settings.fleet and key.shared:
        reply: FleetReply = yield AskFleet(key, settings.fleet_wait)
        notes.extend(["integrity_failures"] * reply.refused)
        if reply.answer is None:
            notes.append("fleet_errors")
        else:
            held = reply.answer.lease
            now = yield ReadClock()
            offered = reply.answer.payload
            cap = key.ttl if isinstance(key, GraphQLKey) else None
            peer = admit_peer_entry(offered, request, settings, now, cap) if offered else None
            if offered is not None and peer is None:
                notes.append("integrity_failures")
            if peer is not None:
                outcome = reply.answer.outcome
                # The hub's "fresh" flag is not authenticated: a hub (or a member putting an old
                # envelope back) could replay an entry long after it expired. The expiry sealed
                # inside the entry is, so both must agree before it is served without GitHub.
                if (outcome in (LeaseOutcome.HIT, LeaseOutcome.FILLED) and reply.answer.fresh
                        and peer.is_fresh(now)):
                    yield from _keep_local(key, peer, now, settings)
                    if outcome is LeaseOutcome.FILLED:
                        notes.append("coalesced_waits")
                    return _serve(peer, Outcome.HIT_PEER, 0, notes)
                if candidate is None or peer.fetched_at > candidate.fetched_at:
                    candidate = peer

    try:
        answer, keep = yield from _fetch(request, settings, candidate, notes, key)
        if keep is not None:
            entry, ttl = keep
            yield from _keep_local(key, entry, (yield ReadClock()), settings)
            if settings.fleet and key.shared and entry.owner is None:
                if entry.size > settings.max_shared_entry:
                    notes.append("too_large_to_share")
                else:
                    lease, held = held, None
                    shared: ShareResult = yield Share(key, entry, ttl,
                                                      ttl + settings.policy.stale_if_error, lease)
                    if shared is not ShareResult.SHARED:
                        notes.append("fleet_errors")
        if held is not None:
            lease, held = held, None
            yield from _release(key, lease, notes)
    except GeneratorExit:
        raise  # the driver abandoned us without throwing: nothing may be yielded now
    except BaseException:
        if held is not None:
            lease, held = held, None
            yield from _release(key, lease, [])
        raise
    return replace(answer, notes=tuple(notes))


def _release(key: CacheKey, lease: Lease, notes: list[str]) -> Generator[Effect, Any, None]:
    taken: bool = yield Release(key, lease)
    if not taken:
        notes.append("fleet_errors")


def _keep_local(key: CacheKey, entry: CacheEntry, now: float, settings: FlowSettings
                ) -> Generator[Effect, Any, None]:
    if entry.size <= settings.max_local_entry:
        keep = max(entry.expires_at - now, 0.0) + settings.policy.stale_if_error
        yield WriteLocal(key.local_id, entry, keep, key.resource)


def _answer_ttl(request: FlowRequest, policy: TtlPolicy, key: CacheKey, status: int,
                body: bytes) -> float | None:
    """Seconds an answer stays fresh (``None``: not kept): a GraphQL query's family TTL for a
    clean answer, else the REST policy's."""
    if isinstance(key, GraphQLKey):
        return key.ttl if graphql_answer_cacheable(status, body) else None
    return policy.ttl(request.path, request.query, status)


def _fetch(request: FlowRequest, settings: FlowSettings, candidate: CacheEntry | None,
           notes: list[str], key: CacheKey
           ) -> Generator[Effect, Any, tuple[Answer, tuple[CacheEntry, float] | None]]:
    policy = settings.policy
    resource = api_resource(request.path)
    limits = (resource, f"{resource}|{request.caller or 'anonymous'}")
    calls = 0
    fetched: Fetched | None = None
    for _ in range(settings.limit_retries + 1):
        # A limit GitHub (or another runner) already reported: answer stale at once, wait for
        # it to lift when that is soon, or say so without spending a call.
        until: float | None = yield CheckLimit(limits)
        now: float = yield ReadClock()
        stale_ok = candidate is not None and now < candidate.expires_at + policy.stale_if_error
        if until is not None and now < until:
            if candidate is not None and stale_ok:
                return _serve(candidate, Outcome.STALE, calls, notes, _STALE_WARNING), None
            if until - now > settings.max_limit_wait:
                notes.append("errors")
                return _limited(until, now, calls), None
            yield Wait(until - now)
        # A GraphQL query is a POST with its body; everything else cached is a GET.
        fetched = yield Fetch(request.method, conditional_headers(request, candidate),
                              request.body, retry_rate_limits=False)
        calls += fetched.calls
        now = yield ReadClock()
        if fetched.status is None:
            break
        limit = limit_until(fetched.status, fetched.headers,
                            fetched.body[:512].decode("utf-8", "replace"), now, settings.retry)
        if limit is None:
            break
        kind, until = limit
        shared = kind == "secondary"
        yield NoteLimit(limits[0] if shared else limits[1], until, shared)
        if (candidate is not None and stale_ok) or until - now > settings.max_limit_wait:
            break  # answered below: stale at once, or GitHub's own answer
    assert fetched is not None
    stale_ok = candidate is not None and now < candidate.expires_at + policy.stale_if_error
    if fetched.status is None:
        if candidate is not None and stale_ok:
            return _serve(candidate, Outcome.STALE, calls, notes, _STALE_WARNING), None
        notes.append("errors")
        return Answer(502, {}, b"", Outcome.MISS, calls,
                      error=f"GitHub is unreachable for {request.path}"), None
    status, headers = fetched.status, fetched.headers
    limited = rate_limit_kind(status, headers, fetched.body[:512].decode("utf-8", "replace"))
    if status >= 500 or limited is not None:
        if candidate is not None and stale_ok:
            return _serve(candidate, Outcome.STALE, calls, notes, _STALE_WARNING), None
        notes.append("errors")
        return Answer(status, dict(headers), fetched.body, Outcome.MISS, calls), None
    rate = {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}
    if status == 304 and candidate is not None:
        ttl = _answer_ttl(request, policy, key, candidate.status, candidate.body) or (
            policy.default_ttl)
        entry = candidate.refreshed(now, ttl)
        if "etag" in headers:
            entry = replace(entry, etag=headers["etag"], etag_owner=request.caller)
        return _serve(entry, Outcome.REVALIDATED, calls, notes, rate), (entry, ttl)
    ttl_or_none = _answer_ttl(request, policy, key, status, fetched.body)
    if ttl_or_none is None:
        if status >= 400:
            notes.append("errors")
        return Answer(status, dict(headers), fetched.body, Outcome.MISS, calls), None
    entry = CacheEntry(
        status=status,
        headers=tuple((k, v) for k, v in headers.items() if k in KEPT_HEADERS),
        body=fetched.body,
        fetched_at=now,
        expires_at=now + ttl_or_none,
        etag=headers.get("etag"),
        etag_owner=request.caller if "etag" in headers else None,
        last_modified=headers.get("last-modified"),
        owner=(request.caller or "anonymous") if status in NEGATIVE_STATUSES else None,
    )
    return _serve(entry, Outcome.MISS, calls, notes, rate), (entry, ttl_or_none)


def _limited(until: float, now: float, calls: int) -> Answer:
    """GitHub's own answer to a request during a limit it announced, without asking it."""
    wait = max(1, int(until - now + 0.999))
    body = json.dumps({
        "message": "API rate limit exceeded; github-p2p holds requests until it lifts "
                   f"(in {wait} s)",
        "documentation_url": "https://docs.github.com/rest/using-the-rest-api/"
                             "rate-limits-for-the-rest-api",
    }).encode()
    return Answer(429, {"content-type": "application/json; charset=utf-8",
                        "retry-after": str(wait), "x-ratelimit-remaining": "0",
                        "x-ratelimit-reset": str(int(until))}, body, Outcome.MISS, calls)


def _serve(entry: CacheEntry, outcome: Outcome, calls: int, notes: list[str],
           extra: Mapping[str, str] | None = None) -> Answer:
    headers = dict(entry.headers)
    headers.update(extra or {})
    return Answer(entry.status, headers, entry.body, outcome, calls, entry, tuple(notes))


def conditional_headers(request: FlowRequest, candidate: CacheEntry | None) -> dict[str, str]:
    """The headers to send upstream: with a candidate, our own validators replace the caller's.

    ETags are token-specific (only the token that got one may send it back); ``Last-Modified``
    works across tokens.
    """
    headers = dict(request.headers)
    if candidate is None:
        return headers
    for name in list(headers):
        if name.lower() in _CONDITIONAL:
            del headers[name]
    if candidate.etag and candidate.etag_owner == request.caller:
        headers["If-None-Match"] = candidate.etag
    elif candidate.last_modified:
        headers["If-Modified-Since"] = candidate.last_modified
    return headers


def admit_peer_entry(entry: CacheEntry, request: FlowRequest, settings: FlowSettings,
                     now: float, cap: float | None = None) -> CacheEntry | None:
    """An entry from the fleet, bounded by what this runner would have stored itself.

    Anyone holding the fleet secret can seal an entry, so nothing in it is taken on trust:
    freshness is capped at the policy's TTL for the path (a forged ten-year expiry becomes a
    minute), ``fetched_at`` at now, headers to the ones we keep, and a ``Link`` that points off
    the API base is dropped (a client following it would send its token elsewhere). Negative and
    uncacheable answers never travel between runners; ``None`` refuses the entry. ``cap``
    overrides the policy's TTL (a GraphQL query's family TTL).
    """
    policy = settings.policy
    if entry.owner is not None or entry.status not in CACHEABLE_STATUSES:
        return None
    if entry.status in NEGATIVE_STATUSES:
        return None
    if cap is None:
        cap = policy.max_ttl(request.path, request.query)
    if cap <= 0:
        return None
    base = settings.api_url + "/"
    headers = tuple(
        (k, v) for k, v in entry.headers
        if k in KEPT_HEADERS and (k != "link" or _links_under(v, base))
    )
    return replace(entry, headers=headers, fetched_at=min(entry.fetched_at, now),
                   expires_at=min(entry.expires_at, now + cap))


def _links_under(value: str, base: str) -> bool:
    targets = link_targets(value)
    return bool(targets) and all(url.startswith(base) for url in targets)
