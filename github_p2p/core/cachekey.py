"""Cache keys (pure).

A key names one GitHub representation: API base URL, method, path, sorted query, ``Accept``,
API version header and the cache scope. The token is never part of it: the fleet shares one
answer per resource, and keys end up in logs and on disk. For answers that depend on the caller
(see :class:`~github_p2p.core.policy.Sharing`) the key carries the token's one-way fingerprint
instead, and such a key is never shared with the fleet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = [
    "DEFAULT_ACCEPT",
    "DEFAULT_API_VERSION",
    "CacheKey",
    "make_cache_key",
    "resource_tags",
]

DEFAULT_ACCEPT = "application/vnd.github+json"
DEFAULT_API_VERSION = "2022-11-28"
# Accept values that GitHub treats as its default media type.
_DEFAULT_ACCEPTS = frozenset({"", "*/*", "application/json", DEFAULT_ACCEPT})


@dataclass(frozen=True)
class CacheKey:
    """A normalised cache key; ``text`` is what gets hashed into local and fleet ids."""

    text: str
    #: The resource (base, scope, path) the key belongs to; writes invalidate by it.
    resource: str
    #: False for a caller-specific key (it names one token's view): never sent to the fleet.
    shared: bool = True

    @property
    def local_id(self) -> str:
        """Hex id used by the local store (the text itself may be long)."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def _resource(base_url: str, scope: str, path: str) -> str:
    return f"{base_url}|{scope}|{path}"


def _normalise_path(path: str) -> str:
    path = "/" + path.lstrip("/")
    return path.rstrip("/") or "/"


def make_cache_key(
    base_url: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    scope: str = "",
    owner: str | None = None,
) -> CacheKey:
    """Build the key of a request. ``headers`` may use any case.

    ``owner`` (a token fingerprint) makes the key private to that token.
    """
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    accept = lowered.get("accept", "").strip()
    if accept in _DEFAULT_ACCEPTS:
        accept = DEFAULT_ACCEPT
    version = lowered.get("x-github-api-version", "").strip() or DEFAULT_API_VERSION
    base = base_url.rstrip("/").lower()
    norm_path = _normalise_path(path)
    sorted_query = urlencode(sorted((str(k), str(v)) for k, v in query))
    parts = [base, method.upper(), norm_path, sorted_query, accept, version, scope]
    if owner is not None:
        parts.append("owner=" + owner)
    return CacheKey(text="|".join(parts), resource=_resource(base, scope, norm_path),
                    shared=owner is None)


#: Collections whose writes change the repository document itself (``open_issues_count``).
_REPO_COUNTED = frozenset({"issues", "pulls"})


def resource_tags(base_url: str, scope: str, path: str) -> list[str]:
    """Resources a write to ``path`` may change: the path and its ancestors.

    ``POST /repos/o/r/issues/5/comments`` changes that comment list, issue 5 (its comment
    count) and the issue list. The repository document itself changes only with its own path
    or with issues and pull requests opening or closing, so a comment edit (the peer registry
    heartbeat is one) does not evict ``/repos/o/r`` fleet-wide.
    """
    base = base_url.rstrip("/").lower()
    parts = _normalise_path(path).strip("/").split("/")
    floor = 1
    if parts[0] == "repos" and len(parts) >= 3:
        touches_repo = len(parts) == 3 or (parts[3] in _REPO_COUNTED and len(parts) <= 5
                                           and "comments" not in parts)
        floor = 3 if touches_repo else 4
    return [
        _resource(base, scope, "/" + "/".join(parts[:end]))
        for end in range(len(parts), floor - 1, -1)
    ]
