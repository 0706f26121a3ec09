"""GraphQL in the request flow (pure): keys, freshness and invalidation of ``POST /graphql``.

* A query is cached under a :class:`GraphQLKey`: the API base, the scope, a digest of the
  normalised query and canonical variables (see :mod:`github_p2p.core.graphql`), the headers that
  change what GitHub answers (``GraphQL-Features``, ``X-Github-Next-Global-ID``), and, for a
  caller-dependent query (``viewer``...), the caller's fingerprint, which also keeps it out of the
  fleet. Its freshness is its family's TTL. A mutation, a subscription, a live query
  (``rateLimit``) or a body that does not parse is passed to GitHub as it is.
* An answer is kept only when it is a ``200`` without ``errors`` (GitHub reports rate limits,
  missing objects and its own failures that way).
* Every cached GraphQL answer carries one resource tag: ``graphql:<owner>/<name>`` when the
  query reads exactly one repository by name, else ``graphql:*``. A mutation forgets the tags of
  the repositories it names (and ``graphql:*``); when it names none by name (``repositoryId``, an
  issue's id), the fleet scope's repository is assumed. A REST write under ``/repos/o/r`` forgets
  ``graphql:o/r``, except comment writes (the peer registry's heartbeat is one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from github_p2p.core.cachekey import CacheKey
from github_p2p.core.graphql import FAMILY_TTLS, mutation_targets, parse_request, query_policy
from github_p2p.errors import GraphQLRequestError

__all__ = [
    "GRAPHQL_PATH",
    "GraphQLKey",
    "graphql_answer_cacheable",
    "graphql_key",
    "graphql_tag",
    "graphql_url",
    "graphql_write_tags",
    "is_graphql",
    "rest_write_graphql_tags",
]

GRAPHQL_PATH = "/graphql"
#: Request headers that change GitHub's GraphQL answer (features, id formats).
_VARYING = ("graphql-features", "x-github-next-global-id")


@dataclass(frozen=True)
class GraphQLKey(CacheKey):
    """The key of a cacheable GraphQL query, with its family and that family's TTL."""

    family: str = "default"
    ttl: float = 60.0


def is_graphql(method: str, path: str) -> bool:
    """True for a GraphQL call (``POST /graphql``)."""
    return method.upper() == "POST" and path.rstrip("/") == GRAPHQL_PATH


def graphql_url(api_url: str) -> str:
    """Where GitHub answers GraphQL for a REST base URL (``.../api/v3`` → ``.../api/graphql``
    on GitHub Enterprise Server, ``{base}/graphql`` elsewhere)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def _base(api_url: str) -> str:
    return api_url.rstrip("/").lower()


def graphql_tag(api_url: str, scope: str, repo: str | None) -> str:
    """The resource tag of GraphQL answers about ``repo`` (``None``: any other answer)."""
    return f"{_base(api_url)}|{scope}|graphql:{repo.lower() if repo else '*'}"


def graphql_key(body: bytes | None, headers: Mapping[str, str], api_url: str, scope: str,
                caller: str | None, ttls: Mapping[str, float] = FAMILY_TTLS
                ) -> GraphQLKey | None:
    """The key of a GraphQL request, or ``None`` when it must go to GitHub uncached."""
    try:
        request = parse_request(body or b"")
    except GraphQLRequestError:
        return None
    policy = query_policy(request, ttls)
    if not policy.cacheable:
        return None
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    material = "\n".join([request.key_material, *(f"{name}={lowered.get(name, '')}"
                                                  for name in _VARYING)])
    digest = hashlib.sha256(material.encode()).hexdigest()
    parts = [_base(api_url), "POST", GRAPHQL_PATH, digest, scope]
    if policy.per_caller:
        parts.append("owner=" + (caller or "anonymous"))
    repo = next(iter(policy.repositories)) if len(policy.repositories) == 1 else None
    return GraphQLKey(text="|".join(parts), resource=graphql_tag(api_url, scope, repo),
                      shared=not policy.per_caller, family=policy.family, ttl=policy.ttl)


def graphql_answer_cacheable(status: int, body: bytes) -> bool:
    """Only a ``200`` whose document has ``data`` and no ``errors`` is kept."""
    if status != 200:
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and "data" in document and not document.get("errors")


def graphql_write_tags(body: bytes | None, api_url: str, scope: str) -> tuple[str, ...]:
    """What a GraphQL call may have changed: nothing for a query, the cached answers about
    the repositories a mutation names (the scope's when it names none) and ``graphql:*``."""
    try:
        request = parse_request(body or b"")
    except GraphQLRequestError:
        request = None
    if request is not None and request.is_query:
        return ()
    repos: set[str] = set()
    if request is not None:
        targets = mutation_targets(request)
        repos = set(targets.repositories)
        if targets.fully_known:
            return (*(graphql_tag(api_url, scope, r) for r in sorted(repos)),
                    graphql_tag(api_url, scope, None))
    if scope.count("/") == 1:
        repos.add(scope.lower())
    return (*(graphql_tag(api_url, scope, r) for r in sorted(repos)),
            graphql_tag(api_url, scope, None))


def rest_write_graphql_tags(path: str, api_url: str, scope: str) -> tuple[str, ...]:
    """The GraphQL answers a REST write under ``/repos/{owner}/{repo}`` may have changed."""
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0] != "repos" or "comments" in parts:
        return ()
    return (graphql_tag(api_url, scope, f"{parts[1]}/{parts[2]}"),)
