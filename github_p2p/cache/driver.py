"""What both drivers of the request flow share: the answer type, the loop that carries a flow
out, the upstream request, and the bookkeeping of statistics.

A driver sends each effect's result back into the flow; when carrying an effect out fails (a
cancellation, a bug), the failure is thrown into the flow instead, so the flow can give back a
lease it holds before the failure travels on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from github_p2p.config import token_fingerprint
from github_p2p.core.cachekey import CacheKey
from github_p2p.core.effects import Answer, Effect, Fetch, Fetched
from github_p2p.core.entry import CacheEntry
from github_p2p.core.flow import Flow, FlowRequest, FlowSettings, cache_key
from github_p2p.core.graphql_cache import GRAPHQL_PATH, graphql_url
from github_p2p.core.paths import RAW_PREFIX, raw_url
from github_p2p.core.stats import Outcome, Stats
from github_p2p.errors import UpstreamUnavailableError

__all__ = [
    "CACHE_HEADER",
    "CONTROL_HEADER",
    "UPSTREAM_CALLS_HEADER",
    "CachedResponse",
    "KeyMemo",
    "drive",
    "drive_async",
    "fetch_upstream",
    "finish",
    "flow_request",
]

#: Header every ``POST /_p2p/...`` to a node must carry (any value): a web page cannot set it
#: on a cross-origin request without a preflight, which the node refuses.
CONTROL_HEADER = "X-GitHub-P2P-Control"
#: Response header telling how a request was answered.
CACHE_HEADER = "X-GitHub-P2P-Cache"
#: Response header telling how many calls to GitHub the answer cost (for exact accounting).
UPSTREAM_CALLS_HEADER = "X-GitHub-P2P-Upstream-Calls"
#: Tokens whose fingerprints a driver remembers.
_FINGERPRINTS = 64
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "content-encoding", "host"})


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


def flow_request(method: str, path: str, query: Sequence[tuple[str, str]],
                 headers: Mapping[str, str] | None, body: bytes | None, token: str | None,
                 fingerprints: dict[str, str] | None = None) -> FlowRequest:
    """A request as the flow sees it: no credentials, only the token's fingerprint.

    ``fingerprints`` remembers the fingerprints of the tokens a driver has seen (a driver
    sees one or a few, and hashing on every request is most of what this costs)."""
    forward = {k: v for k, v in (headers or {}).items()
               if k.lower() not in _HOP_BY_HOP and k.lower() != "authorization"}
    caller = None
    if token:
        caller = fingerprints.get(token) if fingerprints is not None else None
        if caller is None:
            caller = token_fingerprint(token)
            if fingerprints is not None:
                if len(fingerprints) >= _FINGERPRINTS:
                    fingerprints.clear()
                fingerprints[token] = caller
    return FlowRequest(method.upper(), path, tuple((str(k), str(v)) for k, v in query),
                       forward, body, caller)


class KeyMemo:
    """The cache keys of recent requests (a key is a pure function of the request's method,
    path, query, varying headers and caller; computing it scans the policy's families and
    hashes the text). Bounded; a memo, not state."""

    def __init__(self, settings: FlowSettings, size: int = 4096) -> None:
        self._settings = settings
        self._size = size
        self._keys: dict[tuple[object, ...], CacheKey | None] = {}

    def key(self, request: FlowRequest) -> CacheKey | None:
        """:func:`~github_p2p.core.flow.cache_key` of ``request``, remembered."""
        if request.body is not None:  # a GraphQL query: keyed by its body, not memoised
            return cache_key(request, self._settings)
        memo = (request.method, request.path, request.query,
                tuple(sorted((k.lower(), v) for k, v in request.headers.items())),
                request.caller)
        keys = self._keys
        if memo in keys:
            return keys[memo]
        key = cache_key(request, self._settings)
        if len(keys) >= self._size:
            keys.clear()
        keys[memo] = key
        return key


def drive(flow: Flow, perform: Callable[[Effect], Any]) -> Answer:
    """Run ``flow`` to its answer, carrying out each effect with ``perform``."""
    result: Any = None
    failure: BaseException | None = None
    while True:
        try:
            effect = flow.send(result) if failure is None else flow.throw(failure)
        except StopIteration as stop:
            answer: Answer = stop.value
            return answer
        try:
            result, failure = perform(effect), None
        except BaseException as exc:  # handed to the flow, which re-raises it
            result, failure = None, exc


async def drive_async(flow: Flow, perform: Callable[[Effect], Awaitable[Any]]) -> Answer:
    """:func:`drive` for effects carried out by awaiting ``perform``."""
    result: Any = None
    failure: BaseException | None = None
    while True:
        try:
            effect = flow.send(result) if failure is None else flow.throw(failure)
        except StopIteration as stop:
            answer: Answer = stop.value
            return answer
        try:
            result, failure = await perform(effect), None
        except BaseException as exc:  # handed to the flow, which re-raises it
            result, failure = None, exc


def fetch_upstream(send: Callable[..., Any], api_url: str, request: FlowRequest,
                   effect: Fetch, token: str | None) -> Fetched:
    """Carry out a :class:`Fetch` with ``send`` (``Upstream.send``); blocking."""
    url = api_url + "/" + request.path.lstrip("/")
    if request.path == GRAPHQL_PATH:
        url = graphql_url(api_url)  # /api/graphql beside a GHES /api/v3
    elif request.path.startswith(RAW_PREFIX):
        url = raw_url(api_url, request.path)
    if request.query:
        url += "?" + urlencode(list(request.query))
    headers = dict(effect.headers)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = send(effect.method, url, headers, effect.body,
                    wait_for_limits=effect.retry_rate_limits)
    except UpstreamUnavailableError as exc:
        return Fetched(None, calls=exc.calls)
    return Fetched(resp.status, resp.headers, resp.body, resp.calls)


def finish(answer: Answer, stats: Stats) -> CachedResponse:
    """Count ``answer`` and turn it into what the caller gets (or raise its error)."""
    for note in answer.notes:
        stats.add(note)
    stats.record(answer.outcome, answer.calls)
    if answer.error is not None:
        raise UpstreamUnavailableError(answer.error, answer.calls)
    return CachedResponse(answer.status, answer.headers, answer.body, answer.outcome,
                          answer.calls, answer.entry)
