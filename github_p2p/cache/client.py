"""``GitHubClient``: the Python face of github-p2p.

Two backends answer its requests:

* in-process: a :class:`~github_p2p.cache.engine.CacheEngine` (local store, optional fleet, GitHub);
* endpoint: the runner's peer daemon at ``GITHUB_P2P_ENDPOINT``, which shares the fleet cache.

``GitHubClient.from_env()`` picks the endpoint when the action has exported it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qsl

import requests

from github_p2p.cache.driver import (
    CACHE_HEADER,
    CONTROL_HEADER,
    UPSTREAM_CALLS_HEADER,
    CachedResponse,
)
from github_p2p.cache.engine import CacheEngine
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.upstream import Upstream
from github_p2p.config import ClientSettings
from github_p2p.core.flow import FlowSettings
from github_p2p.core.pagination import next_page, page_items
from github_p2p.core.policy import load_policy
from github_p2p.core.stats import Outcome, Stats
from github_p2p.errors import (
    GitHubHTTPError,
    GraphQLResponseError,
    RateLimitExceededError,
    UpstreamError,
    UpstreamUnavailableError,
)

__all__ = ["Backend", "EndpointBackend", "EngineBackend", "GitHubClient", "parse_json"]

log = logging.getLogger(__name__)

Query = Sequence[tuple[str, str]]


class Backend(Protocol):
    """Something that answers requests for a :class:`GitHubClient`."""

    base_url: str

    def send(self, method: str, path: str, query: Query, headers: Mapping[str, str],
             body: bytes | None) -> CachedResponse:
        """Answer one request."""

    def stats(self) -> dict[str, Any]:
        """Counters named as in DESIGN's statistics."""

    def close(self) -> None:
        """Release resources."""


class EngineBackend:
    """Answers in this process through a :class:`CacheEngine`, with a fixed token."""

    def __init__(self, engine: CacheEngine, token: str | None) -> None:
        self.engine = engine
        self.base_url = engine.api_url
        self._token = token

    def send(self, method: str, path: str, query: Query, headers: Mapping[str, str],
             body: bytes | None) -> CachedResponse:
        """Answer through the layered cache."""
        return self.engine.handle(method, path, query, headers, body, self._token)

    def stats(self) -> dict[str, Any]:
        """The engine's counters."""
        return dict(self.engine.stats.snapshot())

    def close(self) -> None:
        """Close the local store."""
        if self.engine.store is not None:
            self.engine.store.close()


class EndpointBackend:
    """Answers through a peer daemon's local HTTP endpoint.

    The daemon reports each answer's outcome and upstream cost in response headers, so this
    client's own statistics are exact too.
    """

    def __init__(self, endpoint: str, token: str | None, *, timeout: float = 60.0) -> None:
        self.base_url = endpoint.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session = requests.Session()
        # The daemon is on loopback: proxy and netrc settings never apply, and reading them
        # costs about a millisecond per request.
        self._session.trust_env = False
        self._stats = Stats()

    def send(self, method: str, path: str, query: Query, headers: Mapping[str, str],
             body: bytes | None) -> CachedResponse:
        """Forward to the daemon."""
        send_headers = dict(headers)
        if self._token and not any(k.lower() == "authorization" for k in send_headers):
            send_headers["Authorization"] = f"Bearer {self._token}"
        try:
            resp = self._session.request(
                method, self.base_url + "/" + path.lstrip("/"), params=list(query),
                headers=send_headers, data=body, timeout=self._timeout, allow_redirects=False,
            )
        except requests.RequestException as exc:
            self._stats.add("errors")
            raise UpstreamUnavailableError(
                f"the github-p2p daemon at {self.base_url} is unreachable: {type(exc).__name__}"
            ) from exc
        lowered = {k.lower(): v for k, v in resp.headers.items()}
        try:
            outcome = Outcome(lowered.get(CACHE_HEADER.lower(), "bypass"))
            calls = int(lowered.get(UPSTREAM_CALLS_HEADER.lower(), "0"))
        except ValueError:
            outcome, calls = Outcome.BYPASS, 0
        graphql = path.rstrip("/") in ("/graphql", "/api/graphql")
        for _ in range(calls):
            self._stats.upstream_call(None, graphql=graphql)
        self._stats.record(outcome, calls)
        if resp.status_code >= 400:
            self._stats.add("errors")
        return CachedResponse(resp.status_code, lowered, resp.content, outcome, calls)

    def invalidate(self, path: str) -> None:
        """Ask the daemon to forget ``path`` (and its ancestors) here and fleet-wide, after a
        write that did not go through it."""
        try:
            self._session.post(self.base_url + "/_p2p/invalidate", json={"path": path},
                               headers={CONTROL_HEADER: "1"},
                               timeout=self._timeout).raise_for_status()
        except requests.RequestException as exc:
            raise UpstreamUnavailableError(
                f"the github-p2p daemon at {self.base_url} did not invalidate {path}"
            ) from exc

    def stats(self) -> dict[str, Any]:
        """This client's own view: what its requests cost, as the daemon reported it."""
        return dict(self._stats.snapshot())

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()


class GitHubClient:
    """A GitHub REST client whose GETs go through the github-p2p cache.

    >>> gh = GitHubClient.from_env()                        # doctest: +SKIP
    >>> gh.get("/repos/octo/hello")["full_name"]            # doctest: +SKIP
    'octo/hello'
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHubClient:
        """Use ``GITHUB_P2P_ENDPOINT`` when set, else an in-process cache."""
        settings = ClientSettings.from_env(os.environ if env is None else env)
        if settings.endpoint:
            return cls(EndpointBackend(settings.endpoint, settings.token,
                                       timeout=settings.timeout + settings.fleet_wait))
        return cls.in_process(settings)

    @classmethod
    def in_process(
        cls,
        settings: ClientSettings,
        *,
        stats: Stats | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> GitHubClient:
        """A client with its own local store (no fleet) under ``settings.cache_dir``.

        ``clock`` and ``sleep`` are injectable so tests can move time without waiting.
        """
        stats = stats or Stats()
        store = LocalStore(settings.cache_dir) if settings.cache_dir is not None else None
        engine = CacheEngine(
            settings=FlowSettings(api_url=settings.api_url, scope=settings.scope,
                                  policy=load_policy(settings.policy_file),
                                  retry=settings.retry),
            upstream=Upstream(stats, retry=settings.retry, timeout=settings.timeout,
                              user_agent=settings.user_agent, sleep=sleep, clock=clock),
            clock=clock,
            sleep=sleep,
            stats=stats,
            store=store,
        )
        return cls(EngineBackend(engine, settings.token))

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the backend's resources."""
        self.backend.close()

    # -- requests ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Query | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> CachedResponse:
        """Send any request and return the answer, whatever its status."""
        path, _, inline = path.partition("?")
        query = parse_qsl(inline, keep_blank_values=True) + _query(params)
        body = None
        send_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            send_headers.setdefault("Content-Type", "application/json")
        return self.backend.send(method.upper(), path, query, send_headers, body)

    def get(self, path: str, *, params: Mapping[str, Any] | Query | None = None,
            headers: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` through the cache and return the parsed JSON body.

        Raises :class:`GitHubHTTPError` (or :class:`RateLimitExceededError`) for an error status.
        """
        return parse_json(self.request("GET", path, params=params, headers=headers), path)

    def paginate(self, path: str, *, params: Mapping[str, Any] | Query | None = None,
                 headers: Mapping[str, str] | None = None, max_pages: int = 1000
                 ) -> Iterator[Any]:
        """Yield the items of every page, following ``Link: rel="next"`` (each page cached)."""
        path, _, inline = path.partition("?")
        query = parse_qsl(inline, keep_blank_values=True) + _query(params)
        if not any(k == "per_page" for k, _ in query):
            query.append(("per_page", "100"))
        current_path, current_query = path, query
        for _ in range(max_pages):
            resp = self.request("GET", current_path, params=current_query, headers=headers)
            yield from page_items(parse_json(resp, current_path))
            following = next_page(self.backend.base_url, resp.headers)
            if following is None:
                return
            current_path, current_query = following
        raise UpstreamError(f"pagination of {path} did not end after {max_pages} pages")

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, *,
                operation_name: str | None = None,
                headers: Mapping[str, str] | None = None) -> Any:
        """Run a GraphQL query (or mutation) and return its ``data``.

        A query is answered through the cache (fleet-wide, per token when it asks about the
        caller: ``viewer``...); a mutation goes to GitHub and forgets the cached answers about the
        repositories it touches. Raises :class:`GitHubHTTPError` for an HTTP error and
        :class:`GraphQLResponseError` when GitHub answers with ``errors``.
        """
        document: dict[str, Any] = {"query": query}
        if variables:
            document["variables"] = dict(variables)
        if operation_name:
            document["operationName"] = operation_name
        resp = self.request("POST", "/graphql", headers=headers, json_body=document)
        answer = parse_json(resp, "/graphql")
        if not isinstance(answer, dict):
            raise GitHubHTTPError(resp.status, "GraphQL answer is not an object", "/graphql")
        errors = answer.get("errors")
        if errors:
            raise GraphQLResponseError(errors, answer.get("data"))
        return answer.get("data")

    def stats(self) -> dict[str, Any]:
        """Counters with the names of ``/_p2p/stats``."""
        return self.backend.stats()


def _query(params: Mapping[str, Any] | Query | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), str(v).lower() if isinstance(v, bool) else str(v)) for k, v in items]


def parse_json(resp: CachedResponse, what: str) -> Any:
    """The JSON body of a successful answer (``None`` when empty).

    Raises :class:`RateLimitExceededError` for an exhausted primary limit and
    :class:`GitHubHTTPError` for any other error status or a body that is not JSON; ``what``
    names the request in the message.
    """
    if resp.status >= 400:
        try:
            message = str(json.loads(resp.body).get("message", ""))
        except (ValueError, AttributeError):
            message = resp.body[:200].decode("utf-8", "replace")
        if resp.status in (403, 429) and resp.headers.get("x-ratelimit-remaining") == "0":
            reset = float(resp.headers.get("x-ratelimit-reset", "0") or 0)
            raise RateLimitExceededError(resp.status, message, what, reset)
        raise GitHubHTTPError(resp.status, message, what)
    if not resp.body:
        return None
    try:
        return json.loads(resp.body)
    except ValueError as exc:
        raise GitHubHTTPError(resp.status, "answer is not JSON", what) from exc
