"""The simulated API as a function of requests: auth, faults, rate limits, routing, validators.

REST requests are routed to the endpoint modules; ``POST /graphql`` (``/api/graphql`` on an
Enterprise host) goes to :mod:`.graphql_endpoint` and spends the caller's separate GraphQL budget,
in points.

No sockets here (the HTTP server hands requests in) and no direct clock reads (the clock is
injected); one lock serialises every request against the state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from nacl.public import PrivateKey

from github_p2p.errors import ConfigError
from github_p2p.testing.simulator import issue_endpoints, repo_endpoints, secret_endpoints
from github_p2p.testing.simulator.actions_secrets import SecretVault, normalise_secret_name
from github_p2p.testing.simulator.conditional import http_date, is_not_modified, token_etag
from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.entities import API_ROOT
from github_p2p.testing.simulator.graphql_data import GraphContext, RateInfo
from github_p2p.testing.simulator.graphql_endpoint import GraphQLApi, graphql_errors
from github_p2p.testing.simulator.memo import Memo, encode_json
from github_p2p.testing.simulator.ratelimit import Budget, RateLimiter, RateStatus
from github_p2p.testing.simulator.records import RequestRecord
from github_p2p.testing.simulator.router import (
    Outcome,
    RouteContext,
    Router,
    error_outcome,
    login_for_token,
)
from github_p2p.testing.simulator.state import Fault, SimulatorState

__all__ = ["ApiRequest", "ApiResponse", "SimulatedGitHub", "bearer_token"]

_ENTERPRISE_PREFIX = "/api/v3"
_ENTERPRISE_GRAPHQL = "/api/graphql"
_GRAPHQL = "/graphql"
_GRAPHQL_AUTH_DOCS = (
    "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql"
)
_RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
_NO_BODY = (204, 304)


@dataclass(frozen=True)
class ApiRequest:
    """An HTTP request as the server read it; ``headers`` has lower-case names."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes
    client: str


@dataclass(frozen=True)
class ApiResponse:
    """An HTTP response to write back (the server adds ``Content-Length`` and ``Date``)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def bearer_token(authorization: str) -> str:
    """The token of ``Authorization: Bearer X`` or ``token X``; ``""`` for anything else."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return ""


def _own_api_urls(body: bytes, base_url: str) -> bytes:
    """Bodies name resources by absolute URL on the server that answers, as GitHub's do: the
    seed data is written against api.github.com and served against this server's base."""
    if not base_url or base_url == API_ROOT:
        return body
    return body.replace(b'"' + API_ROOT.encode(), b'"' + base_url.encode())


def _repo_in_path(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "repos" and parts[2] and parts[3]:
        return f"{parts[2]}/{parts[3]}".lower()
    return None


@dataclass(frozen=True)
class _Incoming:
    """What the pipeline needs from a request, read once."""

    path: str
    query: str
    base_url: str
    token: str
    if_none_match: str | None
    if_modified_since: str | None

    @property
    def conditional(self) -> bool:
        return self.if_none_match is not None or self.if_modified_since is not None

    @classmethod
    def parse(cls, request: ApiRequest, base_url: str) -> _Incoming:
        path, _, query = request.target.partition("?")
        if path == _ENTERPRISE_GRAPHQL:
            # An Enterprise host answers GraphQL at /api/graphql, beside /api/v3.
            path = _GRAPHQL
        elif path == _ENTERPRISE_PREFIX or path.startswith(_ENTERPRISE_PREFIX + "/"):
            # `gh` and Octokit speak to a GitHub Enterprise host under /api/v3.
            path = path[len(_ENTERPRISE_PREFIX) :] or "/"
            base_url += _ENTERPRISE_PREFIX
        return cls(
            path=path,
            query=query,
            base_url=base_url,
            token=bearer_token(request.headers.get("authorization", "")),
            if_none_match=request.headers.get("if-none-match"),
            if_modified_since=request.headers.get("if-modified-since"),
        )


class SimulatedGitHub:
    """GitHub's REST behaviour over :class:`SimulatorState`, one request at a time."""

    def __init__(
        self, config: SimulatorConfig, *, clock: Callable[[], float], private_key: PrivateKey
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._state = SimulatorState(config, SecretVault(private_key))
        self._limiter = RateLimiter(config.rate_limit_window)
        self._router = Router(
            [*repo_endpoints.routes(), *issue_endpoints.routes(), *secret_endpoints.routes()]
        )
        self._graphql = GraphQLApi()
        self._records: list[RequestRecord] = []
        self._memo = Memo()
        self._latency = config.latency
        self._request_counter = 0

    # --- requests -----------------------------------------------------------------------------

    def handle(self, request: ApiRequest, base_url: str) -> ApiResponse:
        """Answer one API request and record it; ``base_url`` is used for ``Link`` targets."""
        now_exact = self._clock()
        now = int(now_exact)
        incoming = _Incoming.parse(request, base_url)
        graphql = incoming.path == _GRAPHQL and request.method == "POST"
        with self._lock:
            self._request_counter += 1
            request_id = f"5EED:{self._request_counter:06X}:{now & 0xFFFFFF:06X}"
            config = self._config
            budget = self._limiter.budget_for(
                incoming.token,
                _repo_in_path(incoming.path),
                request.client,
                user_limit=config.rate_limit,
                installation_limit=config.installation_limit,
                anonymous_limit=config.unauthenticated_rate_limit,
                resource="graphql" if graphql else "core",
            )
            if graphql:
                outcome, extra, cost = self._graphql_outcome(
                    request, incoming, budget, now, request_id)
            else:
                outcome, extra, cost = self._outcome(request, incoming, budget, now, request_id)
            status = outcome.status
            body = b"" if status in _NO_BODY else outcome.raw
            if body is None:
                body = encode_json(outcome.payload)
            etag = None
            if request.method in ("GET", "HEAD") and status == 200:
                etag = token_etag(incoming.token, body)
                if incoming.conditional and is_not_modified(
                    incoming.if_none_match, incoming.if_modified_since, etag, outcome.last_modified
                ):
                    # A 304 to a conditional request is free: it spends no budget.
                    status, body = 304, b""
            # After the ETag: two simulators holding the same data agree on validators.
            body = _own_api_urls(body, incoming.base_url)
            if cost and status != 304:
                counted, rate = self._limiter.try_consume(budget, now, cost)
            else:
                counted, rate = False, self._limiter.status(budget, now)
            self._records.append(
                RequestRecord(
                    method=request.method,
                    path=incoming.path,
                    query=incoming.query,
                    token=incoming.token,
                    status=status,
                    counted=counted,
                    timestamp=now_exact,
                    conditional=incoming.conditional,
                    resource=budget.key.resource,
                    cost=cost if counted else 0,
                )
            )
        headers = self._headers(outcome, status, incoming.token, etag, rate, request_id)
        return ApiResponse(status, tuple(headers + extra), body)

    def _outcome(
        self, request: ApiRequest, incoming: _Incoming, budget: Budget, now: int, request_id: str
    ) -> tuple[Outcome, list[tuple[str, str]], int]:
        """The answer before validators, extra headers, and the points it may spend."""
        metered = incoming.path != "/rate_limit"
        faulted = self._fault(request_id, 1 if metered else 0)
        if faulted is not None:
            return faulted
        if not metered:
            graphql_budget = self._limiter.budget_for(
                incoming.token, None, request.client, user_limit=self._config.rate_limit,
                installation_limit=self._config.installation_limit,
                anonymous_limit=self._config.unauthenticated_rate_limit, resource="graphql")
            body = self._rate_limit_body(self._limiter.status(budget, now),
                                         self._limiter.status(graphql_budget, now))
            return Outcome(200, body), [], 0
        if self._limiter.status(budget, now).remaining == 0:
            message = f"API rate limit exceeded for {budget.owner_description}"
            outcome = error_outcome(403, message, f"{_RATE_DOCS}#about-the-primary-rate-limit")
            return outcome, [], 0
        ctx = RouteContext(
            method=request.method,
            path=incoming.path,
            params=tuple(parse_qsl(incoming.query, keep_blank_values=True)),
            body=request.body,
            token=incoming.token,
            accept=request.headers.get("accept", ""),
            base_url=incoming.base_url,
            now=now,
            state=self._state,
            config=self._config,
            memo=self._memo,
        )
        return self._router.dispatch(ctx), [], 1

    def _fault(self, request_id: str, cost: int
               ) -> tuple[Outcome, list[tuple[str, str]], int] | None:
        """The injected fault this request suffers, if any, and what it costs."""
        fault = self._state.next_fault()
        if fault is None:
            return None
        if fault.kind == "5xx":
            # The request never reached the API proper, so it costs nothing.
            return error_outcome(fault.status, HTTPStatus(fault.status).phrase), [], 0
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again. If you reach out to GitHub Support for help, please include the "
            f"request ID {request_id}."
        )
        outcome = error_outcome(fault.status, message, f"{_RATE_DOCS}#about-secondary-rate-limits")
        after = fault.retry_after
        # GitHub does not always say how long: then a client waits at least a minute.
        return outcome, [("retry-after", str(after))] if after is not None else [], cost

    def _graphql_outcome(
        self, request: ApiRequest, incoming: _Incoming, budget: Budget, now: int, request_id: str
    ) -> tuple[Outcome, list[tuple[str, str]], int]:
        """``POST /graphql``: authentication, price, budget, then the query itself."""
        faulted = self._fault(request_id, 1)
        if faulted is not None:
            return faulted
        if not incoming.token:
            message = "This endpoint requires you to be authenticated."
            return error_outcome(401, message, _GRAPHQL_AUTH_DOCS), [], 0
        prepared = self._graphql.prepare(request.body)
        if isinstance(prepared, Outcome):
            return prepared, [], 1 if prepared.status == 200 else 0
        status = self._limiter.status(budget, now)
        if status.remaining < prepared.cost:
            # GitHub answers 200 with an error, and the headers say the budget is spent.
            refused = graphql_errors({
                "type": "RATE_LIMIT", "code": "graphql_rate_limit",
                "message": f"API rate limit already exceeded for {budget.owner_description}.",
            })
            return refused, [], 0
        rate = RateInfo(prepared.cost, status.limit, status.used + prepared.cost, status.reset,
                        prepared.node_count)
        ctx = GraphContext(self._state, self._config, self._graphql.registry,
                           login_for_token(incoming.token), now, rate)
        return self._graphql.execute(prepared, ctx), [], prepared.cost

    def _headers(
        self,
        outcome: Outcome,
        status: int,
        token: str,
        etag: str | None,
        rate: RateStatus,
        request_id: str,
    ) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        if status not in _NO_BODY:
            headers.append(("content-type", outcome.content_type))
        visibility = "private" if token else "public"
        headers.append(("cache-control", f"{visibility}, max-age=60, s-maxage=60"))
        headers.append(("vary", "Accept, Authorization, Cookie, X-GitHub-OTP"))
        if etag is not None:
            headers.append(("etag", etag))
        if outcome.last_modified is not None and status in (200, 304):
            headers.append(("last-modified", http_date(outcome.last_modified)))
        if outcome.link is not None and status == 200:
            headers.append(("link", outcome.link))
        headers.append(("x-github-api-version-selected", "2022-11-28"))
        media = "github.v4" if rate.resource == "graphql" else "github.v3"
        headers.append(("x-github-media-type", f"{media}; format=json"))
        headers.extend(rate.headers())
        headers.append(("x-github-request-id", request_id))
        # GitHub's API is readable from any web page (its answers depend on the token sent).
        headers.append(("access-control-allow-origin", "*"))
        headers.append(("access-control-expose-headers", "ETag, Link, Location, Retry-After, "
                        "X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, "
                        "X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset"))
        return headers

    def _rate_limit_body(self, core: RateStatus, graphql: RateStatus) -> dict[str, Any]:
        def block(limit: int, used: int, reset: int) -> dict[str, int]:
            return {"limit": limit, "used": used, "remaining": limit - used, "reset": reset}

        core_block = block(core.limit, core.used, core.reset)
        return {
            "resources": {
                "core": core_block,
                "search": block(30, 0, core.reset),
                "graphql": block(graphql.limit, graphql.used, graphql.reset),
            },
            "rate": core_block,
        }

    # --- control --------------------------------------------------------------------------------

    def records(self) -> list[RequestRecord]:
        """Every API request served so far, in order."""
        with self._lock:
            return list(self._records)

    def reset_records(self) -> None:
        """Forget the recorded requests (state and budgets stay)."""
        with self._lock:
            self._records.clear()

    def reset_rate_limits(self) -> None:
        """Refill every rate-limit budget."""
        with self._lock:
            self._limiter.reset()

    def set_resource(self, path: str, body: Any) -> None:
        """Create or replace a resource served at ``path`` (new ETag and ``Last-Modified``)."""
        if not path.startswith("/") or "?" in path or path.startswith("/_simulator"):
            raise ConfigError(f"resource path must be an absolute API path, not {path!r}")
        try:
            encode_json(body)
        except (TypeError, ValueError) as exc:
            raise ConfigError("resource body must be JSON-serialisable") from exc
        with self._lock:
            self._state.set_resource(path, body, int(self._clock()))

    def fail_next(self, count: int, status: int = 502) -> None:
        """Answer the next ``count`` API requests with server error ``status``."""
        if count < 0 or not 500 <= status <= 599:
            raise ConfigError("fail_next needs count >= 0 and a 5xx status")
        with self._lock:
            self._state.add_faults(Fault("5xx", status), count)

    def secondary_limit_next(self, count: int, retry_after: int | None = 1,
                             status: int = 403) -> None:
        """Answer the next ``count`` API requests with a secondary rate limit (403 or 429)."""
        if count < 0 or (retry_after is not None and retry_after < 0) or status not in (403, 429):
            raise ConfigError("secondary_limit_next needs count, retry_after >= 0, status 403/429")
        with self._lock:
            self._state.add_faults(Fault("secondary", status, retry_after), count)

    def clear_faults(self) -> None:
        """Drop injected faults that have not fired yet."""
        with self._lock:
            self._state.clear_faults()

    @property
    def latency(self) -> float:
        """Seconds every API request waits before it is answered."""
        with self._lock:
            return self._latency

    def set_latency(self, seconds: float) -> None:
        """Change the per-request latency."""
        if seconds < 0:
            raise ConfigError("latency must not be negative")
        with self._lock:
            self._latency = seconds

    @property
    def public_key(self) -> tuple[str, str]:
        """``(key_id, base64 key)`` that secrets must be sealed to."""
        return self._state.vault.key_id, self._state.vault.public_key

    def secret_value(self, repo: str, name: str) -> str | None:
        """The decrypted value of an Actions secret, for tests; ``None`` if it is not set."""
        stored_name = normalise_secret_name(name)
        if stored_name is None:
            return None
        with self._lock:
            secret = self._state.vault.get(repo.lower(), stored_name)
        return None if secret is None else secret.plaintext.decode("utf-8", errors="replace")
