"""Cache policy: what may be cached, for how long, and who may share it (pure).

Paths fall into *families* (see :data:`DEFAULT_FAMILIES` and ``docs/freshness.md``). A family
says how long an answer stays fresh and how far it may travel:

* ``fleet``: one answer serves every caller of the fleet's scope (most of the REST API);
* ``token``: the answer depends on who asks (``/user``, ``/installation/...``, a
  collaborator's permission, notifications): cached per token, never shared;
* ``none``: never cached (live or signed answers: ``/rate_limit``, log and archive redirects).

Only content addressed by a SHA is immutable: git objects by SHA, ``/commits/{sha}`` itself,
``contents``/``readme`` at ``ref={sha}`` and ``compare/{sha}...{sha}``. Everything hanging off a
commit whose state changes while CI runs (check runs and suites, statuses, comments, the pulls
of a commit) is short-lived. Negative answers (404, 410) are remembered briefly and only for the
token that saw them; 401, 403, 429 and 5xx are never cached.

A YAML file can override the numbers and add rules, tried before the built-in families::

    default_ttl: 60
    immutable_ttl: 604800
    negative_ttl: 30
    stale_if_error: 86400
    rules:
      - pattern: '^/repos/[^/]+/[^/]+/actions/runs'
        ttl: 30
      - pattern: '^/orgs/[^/]+/members'
        ttl: 120
        sharing: token
      - pattern: '^/repos/[^/]+/[^/]+/traffic'
        ttl: 0          # 0 = never cache (bypass)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from github_p2p.errors import ConfigError

__all__ = [
    "CACHEABLE_STATUSES",
    "DEFAULT_FAMILIES",
    "NEGATIVE_STATUSES",
    "Family",
    "Sharing",
    "TtlPolicy",
    "load_policy",
]

#: Statuses worth remembering. 5xx, 401, 403 and 429 are deliberately absent: they are
#: transient or specific to one token.
CACHEABLE_STATUSES = frozenset({200, 203, 301, 404, 410})
#: Answers that say "not there (for you)": kept only for the token that saw them.
NEGATIVE_STATUSES = frozenset({401, 403, 404, 410})

_SHA = r"[0-9a-fA-F]{40}"
_MEMO_SIZE = 4096
_FULL_SHA = re.compile(_SHA)
_REPO = r"^/repos/[^/]+/[^/]+"


class Sharing(str, Enum):
    """How far a cached answer may travel."""

    FLEET = "fleet"
    TOKEN = "token"
    NONE = "none"


@dataclass(frozen=True)
class Family:
    """Paths matching ``pattern`` (searched in the path) share a TTL and a sharing rule.

    ``ttl`` is ``None`` for the immutable families (their TTL is the policy's
    ``immutable_ttl``); ``query_sha`` families are immutable only when a query parameter named
    ``ref`` or ``sha`` pins a full commit SHA, and fall back to ``default_ttl`` otherwise.
    ``example`` and ``why`` document the family (and the tests check every example).
    """

    name: str
    pattern: str
    ttl: float | None
    sharing: Sharing = Sharing.FLEET
    why: str = ""
    example: str = ""
    query_sha: bool = False
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ttl is not None and self.ttl < 0:
            raise ConfigError(f"policy rule {self.pattern!r}: ttl must be >= 0")
        try:
            object.__setattr__(self, "_regex", re.compile(self.pattern))
        except re.error as exc:
            raise ConfigError(f"policy rule {self.pattern!r}: {exc}") from exc

    def matches(self, path: str) -> bool:
        """True when the family covers ``path``."""
        return self._regex.search(path) is not None


#: The built-in families, most specific first (the first match wins).
DEFAULT_FAMILIES: tuple[Family, ...] = (
    Family("rate-limit", r"^/rate_limit$", 0, Sharing.NONE,
           "the caller's live budget; GitHub does not count it against the limit anyway",
           "/rate_limit"),
    Family("signed-redirects",
           _REPO + r"/(actions/(runs/\d+(/attempts/\d+)?|jobs/\d+)/logs"
           r"|actions/artifacts/\d+/(zip|[^/]+)$|zipball|tarball)", 0, Sharing.NONE,
           "answered with a redirect to a short-lived URL signed for the caller",
           "/repos/o/r/actions/runs/7/logs"),
    Family("raw", r"^/raw/", 0, Sharing.NONE,
           "raw file contents on the raw host (GitHub's MCP server asks for them): passed through",
           "/raw/o/r/main/README.md"),
    Family("caller", r"^/user(/|$)", 60, Sharing.TOKEN,
           "describes the authenticated caller (its repos, emails, orgs...)", "/user/repos"),
    Family("installation", r"^/installation(/|$)", 60, Sharing.TOKEN,
           "what the calling app installation can reach", "/installation/repositories"),
    Family("notifications", r"^(/notifications|" + _REPO + r"/notifications)(/|$)", 60,
           Sharing.TOKEN, "the caller's inbox", "/notifications"),
    Family("permission", _REPO + r"/collaborators/[^/]+/permission$", 60, Sharing.TOKEN,
           "answers differ by the caller's own access", "/repos/o/r/collaborators/u/permission"),
    Family("commit-state",
           _REPO + r"/commits/[^/]+/(check-runs|check-suites|status|statuses|comments|pulls"
           r"|branches-where-head)(/|$)", 10, Sharing.FLEET,
           "changes while CI runs; CI polls exactly these", "/repos/o/r/commits/"
           + "a" * 40 + "/check-runs"),
    Family("checks", _REPO + r"/(check-runs|check-suites|statuses)(/|$)", 10, Sharing.FLEET,
           "check runs and statuses move while CI runs", "/repos/o/r/check-runs/5"),
    Family("git-object", _REPO + r"/git/(blobs|trees|commits|tags)/" + _SHA + r"$", None,
           Sharing.FLEET, "git objects are addressed by their SHA and never change",
           "/repos/o/r/git/trees/" + "b" * 40),
    Family("commit", _REPO + r"/commits/" + _SHA + r"$", None, Sharing.FLEET,
           "a commit by full SHA never changes", "/repos/o/r/commits/" + "c" * 40),
    Family("compare", _REPO + r"/compare/" + _SHA + r"\.\.\.?" + _SHA + r"$", None,
           Sharing.FLEET, "the comparison of two SHAs never changes",
           "/repos/o/r/compare/" + "d" * 40 + "..." + "e" * 40),
    Family("contents", _REPO + r"/(contents|readme)(/|$)", 60, Sharing.FLEET,
           "immutable when ref= pins a full SHA; a branch moves", "/repos/o/r/readme",
           query_sha=True),
    Family("actions", _REPO + r"/actions/(runs|jobs|runners)(/|$)", 30, Sharing.FLEET,
           "runs and runners change state within seconds", "/repos/o/r/actions/runs"),
    Family("refs", _REPO + r"/(git/refs?|branches)(/|$)", 30, Sharing.FLEET,
           "branches move with every push", "/repos/o/r/branches/main"),
    Family("releases", _REPO + r"/releases(/|$)", 300, Sharing.FLEET,
           "published rarely; our own writes invalidate fleet-wide", "/repos/o/r/releases"),
    Family("repository", _REPO + r"$", 300, Sharing.FLEET,
           "metadata changes rarely; writes through the fleet invalidate it", "/repos/o/r"),
)


@dataclass(frozen=True)
class TtlPolicy:
    """Decides the freshness lifetime and the sharing of a response; a value."""

    default_ttl: float = 60.0
    immutable_ttl: float = 7 * 24 * 3600.0
    negative_ttl: float = 30.0
    #: How long past expiry an entry may still be served, marked stale, when GitHub fails.
    stale_if_error: float = 24 * 3600.0
    families: tuple[Family, ...] = field(default=DEFAULT_FAMILIES)
    #: Which family each recent path fell into: every request asks, and the answer for a path
    #: never changes (bounded; a memo, not state).
    _memo: dict[str, Family | None] = field(default_factory=dict, init=False, repr=False,
                                            compare=False)

    def __post_init__(self) -> None:
        for name in ("default_ttl", "immutable_ttl", "negative_ttl", "stale_if_error"):
            if getattr(self, name) < 0:
                raise ConfigError(f"policy {name} must be >= 0")

    def family(self, path: str) -> Family | None:
        """The first family covering ``path`` (``None``: the defaults apply)."""
        memo = self._memo
        if path in memo:
            return memo[path]
        found = next((f for f in self.families if f.matches(path)), None)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[path] = found
        return found

    def sharing(self, path: str) -> Sharing:
        """How far an answer for ``path`` may travel."""
        family = self.family(path)
        if family is None:
            return Sharing.FLEET
        return Sharing.NONE if family.ttl == 0 else family.sharing

    def bypass(self, method: str, path: str) -> bool:
        """True when a request must go straight to GitHub, uncached."""
        return method.upper() != "GET" or self.sharing(path) is Sharing.NONE

    def ttl(self, path: str, query: Iterable[tuple[str, str]], status: int) -> float | None:
        """Seconds a response stays fresh, or ``None`` when it must not be cached."""
        if status not in CACHEABLE_STATUSES:
            return None
        if status in NEGATIVE_STATUSES:
            return self.negative_ttl or None
        family = self.family(path)
        if family is None:
            return self.default_ttl or None
        if family.ttl is None:
            return self.immutable_ttl or None
        if family.query_sha and _pinned(query):
            return self.immutable_ttl or None
        return family.ttl or None

    def max_ttl(self, path: str, query: Iterable[tuple[str, str]]) -> float:
        """The longest freshness any answer for ``path`` may claim (caps entries from peers)."""
        return self.ttl(path, query, 200) or 0.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TtlPolicy:
        """Build a policy from parsed YAML; user rules are tried before the built-in ones."""
        known = {"default_ttl", "immutable_ttl", "negative_ttl", "stale_if_error", "rules"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        try:
            numbers = {k: float(data[k]) for k in known - {"rules"} if k in data}
            rules = tuple(
                Family(f"rule {i + 1}", str(item["pattern"]), float(item["ttl"]),
                       Sharing(str(item.get("sharing", "fleet"))), "from the policy file")
                for i, item in enumerate(data.get("rules") or ())
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"policy file is malformed: {exc}") from exc
        return cls(families=rules + DEFAULT_FAMILIES, **numbers)


def _pinned(query: Iterable[tuple[str, str]]) -> bool:
    return any(k in ("ref", "sha") and _FULL_SHA.fullmatch(v) for k, v in query)


def load_policy(path: str | Path | None) -> TtlPolicy:
    """Read a YAML policy file; ``None`` gives the built-in defaults."""
    if path is None:
        return TtlPolicy()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"policy file {path} must hold a mapping")
    return TtlPolicy.from_mapping(data)
