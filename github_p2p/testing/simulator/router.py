"""The routing machinery endpoint modules share: request context, outcome, errors, table."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any
from urllib.parse import unquote

from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.entities import ACTIONS_BOT
from github_p2p.testing.simulator.memo import Memo, encode_json, encode_json_list
from github_p2p.testing.simulator.pagination import paginate
from github_p2p.testing.simulator.ratelimit import INSTALLATION_PREFIX
from github_p2p.testing.simulator.state import SimulatorState

__all__ = [
    "DOCS_URL",
    "JSON_TYPE",
    "Handler",
    "Outcome",
    "Route",
    "RouteContext",
    "RouteError",
    "Router",
    "error_outcome",
    "invalid",
    "login_for_token",
]

JSON_TYPE = "application/json; charset=utf-8"
DOCS_URL = "https://docs.github.com/rest"


def login_for_token(token: str) -> str:
    """The user a token acts as: the Actions bot for ``ghs_`` tokens, else a token-derived login."""
    if token.startswith(INSTALLATION_PREFIX):
        return ACTIONS_BOT
    return "user-" + hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Outcome:
    """What an endpoint answers, before the service adds validators and rate-limit headers.

    ``payload`` is serialised as JSON unless ``raw`` is given; a 204 has no body.
    ``last_modified`` is set only for single objects: GitHub's list endpoints carry no
    ``Last-Modified``, so ``If-Modified-Since`` cannot revalidate them.
    """

    status: int
    payload: Any = None
    raw: bytes | None = None
    content_type: str = JSON_TYPE
    last_modified: int | None = None
    link: str | None = None


def error_outcome(status: int, message: str, docs: str = DOCS_URL) -> Outcome:
    """A GitHub-shaped error body."""
    return Outcome(status, {"message": message, "documentation_url": docs, "status": str(status)})


class RouteError(Exception):
    """Raised inside an endpoint to answer with an error outcome at once."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.status)
        self.outcome = outcome


@dataclass(frozen=True)
class RouteContext:
    """One API request as endpoints see it, with the state they may read and change."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    body: bytes
    token: str
    accept: str
    base_url: str
    now: int
    state: SimulatorState
    config: SimulatorConfig
    memo: Memo

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        for key, value in self.params:
            if key == name:
                return value
        return default

    def page(self, items: Sequence[Any]) -> tuple[list[Any], str | None]:
        """The requested page of ``items`` and its ``Link`` header value."""
        return paginate(
            items,
            self.params,
            self.base_url + self.path,
            per_page_default=self.config.per_page_default,
            per_page_max=self.config.per_page_max,
        )

    def json_page(self, items: Sequence[Any], encode: Callable[[Any], bytes]) -> Outcome:
        """A paginated list outcome whose items are encoded (and memoised) one by one."""
        page, link = self.page(items)
        return Outcome(200, raw=encode_json_list([encode(item) for item in page]), link=link)

    def actor(self) -> str:
        """The login of the caller; answers 401 to unauthenticated callers."""
        if not self.token:
            raise RouteError(error_outcome(401, "Requires authentication"))
        return login_for_token(self.token)

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object; 400 like GitHub when it is not one."""
        try:
            data = json.loads(self.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict):
            raise RouteError(error_outcome(400, "Problems parsing JSON"))
        return data


def invalid(message: str) -> RouteError:
    """A 422 the way GitHub words a failed validation."""
    return RouteError(error_outcome(422, f"Invalid request.\n\n{message}"))


Handler = Callable[[RouteContext, dict[str, str]], Outcome]


@dataclass(frozen=True)
class Route:
    """An endpoint: method, path pattern (named groups) and handler.

    ``fixed`` marks endpoints whose answer depends only on the request (seeded data no write can
    change), so the router may memoise it.
    """

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    fixed: bool = False

    @classmethod
    def of(cls, method: str, template: str, handler: Handler, *, fixed: bool = False) -> Route:
        """A route from a template like ``/repos/{owner}/{repo}``; ``{path+}`` spans slashes."""
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return cls(method, re.compile(f"^{regex}$"), handler, fixed)


class Router:
    """Finds the endpoint for a request; resources set at run time win over built-in ones."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)

    def dispatch(self, ctx: RouteContext) -> Outcome:
        """Answer one request; unknown paths and methods get GitHub's 404."""
        method = "GET" if ctx.method == "HEAD" else ctx.method
        if method == "GET":
            custom = ctx.state.resource(ctx.path)
            if custom is not None:
                return _custom_outcome(ctx, custom.body, custom.modified)
        for route in self._routes:
            if route.method != method:
                continue
            match = route.pattern.match(ctx.path)
            if match is None:
                continue
            groups = {key: unquote(value) for key, value in match.groupdict().items()}
            if not route.fixed:
                return _run(route.handler, ctx, groups)
            key = ("route", ctx.path, ctx.params, ctx.accept, bool(ctx.token), ctx.base_url)
            return ctx.memo.get(key, partial(_fixed, route.handler, ctx, groups))
        return error_outcome(404, "Not Found")


def _run(handler: Handler, ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    try:
        return handler(ctx, groups)
    except RouteError as exc:
        return exc.outcome


def _fixed(handler: Handler, ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    # Memoised outcomes keep their encoded body, so a hit costs neither rendering nor encoding.
    outcome = _run(handler, ctx, groups)
    if outcome.raw is not None or outcome.status == 204:
        return outcome
    return replace(outcome, raw=encode_json(outcome.payload))


def _custom_outcome(ctx: RouteContext, body: Any, modified: int) -> Outcome:
    # A list behaves like a GitHub list endpoint (paginated, no Last-Modified); anything else
    # like a single object.
    if isinstance(body, list):
        page, link = ctx.page(body)
        return Outcome(200, page, link=link)
    return Outcome(200, body, last_modified=modified)
