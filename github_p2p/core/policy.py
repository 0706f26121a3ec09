"""Cache policy: what may be cached, and for how long (pure).

Built-in defaults follow GitHub's own ``max-age=60``; resources pinned to a 40-hex commit SHA
never change and live long; a 404 is remembered briefly; errors and rate-limit answers are never
cached. A YAML file can override the numbers and add per-path rules::

    default_ttl: 60
    immutable_ttl: 604800
    negative_ttl: 30
    stale_if_error: 86400
    rules:
      - pattern: '^/repos/[^/]+/[^/]+/actions/runs'
        ttl: 30
      - pattern: '^/user$'
        ttl: 0          # 0 = never cache (bypass)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from github_p2p.errors import ConfigError

__all__ = ["CACHEABLE_STATUSES", "DEFAULT_RULES", "PathRule", "TtlPolicy", "load_policy"]

#: Statuses worth remembering. 5xx, 401, 403 and 429 are deliberately absent: they are
#: transient or specific to one token.
CACHEABLE_STATUSES = frozenset({200, 203, 301, 404, 410})
_SHA = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{40}(?![0-9a-fA-F])")


@dataclass(frozen=True)
class PathRule:
    """A TTL for paths matching ``pattern`` (a regular expression searched in the path)."""

    pattern: str
    ttl: float

    def __post_init__(self) -> None:
        if self.ttl < 0:
            raise ConfigError(f"policy rule {self.pattern!r}: ttl must be >= 0")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ConfigError(f"policy rule {self.pattern!r}: {exc}") from exc

    def matches(self, path: str) -> bool:
        """True when the rule applies to ``path``."""
        return re.search(self.pattern, path) is not None


#: Answers that depend on who asks, or that exist to be live, are never cached.
DEFAULT_RULES: tuple[PathRule, ...] = (
    PathRule(r"^/rate_limit$", 0),
    PathRule(r"^/user(/|$)", 0),
    PathRule(r"^/notifications", 0),
    PathRule(r"^/repos/[^/]+/[^/]+/actions/runs/\d+/(logs|attempts/\d+/logs)", 0),
    PathRule(r"^/repos/[^/]+/[^/]+/actions/(runs|jobs)", 30),
    PathRule(r"^/repos/[^/]+/[^/]+/actions/runners", 30),
    PathRule(r"^/repos/[^/]+/[^/]+$", 300),
    PathRule(r"^/repos/[^/]+/[^/]+/releases", 300),
)


@dataclass(frozen=True)
class TtlPolicy:
    """Decides the freshness lifetime of a response; a value, carried out by the client."""

    default_ttl: float = 60.0
    immutable_ttl: float = 7 * 24 * 3600.0
    negative_ttl: float = 30.0
    #: How long past expiry an entry may still be served, marked stale, when GitHub fails.
    stale_if_error: float = 24 * 3600.0
    rules: tuple[PathRule, ...] = field(default=DEFAULT_RULES)

    def __post_init__(self) -> None:
        for name in ("default_ttl", "immutable_ttl", "negative_ttl", "stale_if_error"):
            if getattr(self, name) < 0:
                raise ConfigError(f"policy {name} must be >= 0")

    def bypass(self, method: str, path: str) -> bool:
        """True when a request must go straight to GitHub, uncached."""
        if method.upper() != "GET":
            return True
        rule = self._rule(path)
        return rule is not None and rule.ttl == 0

    def ttl(self, path: str, query: Iterable[tuple[str, str]], status: int) -> float | None:
        """Seconds a response stays fresh, or ``None`` when it must not be cached."""
        if status not in CACHEABLE_STATUSES:
            return None
        if status in (404, 410):
            return self.negative_ttl or None
        if self.is_immutable(path, query):
            return self.immutable_ttl
        rule = self._rule(path)
        ttl = rule.ttl if rule is not None else self.default_ttl
        return ttl or None

    @staticmethod
    def is_immutable(path: str, query: Iterable[tuple[str, str]]) -> bool:
        """A path or ``ref`` pinned to a full commit SHA names content that never changes."""
        if _SHA.search(path):
            return True
        return any(k in ("ref", "sha") and _SHA.fullmatch(v) for k, v in query)

    def _rule(self, path: str) -> PathRule | None:
        return next((rule for rule in self.rules if rule.matches(path)), None)

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
                PathRule(str(item["pattern"]), float(item["ttl"]))
                for item in data.get("rules") or ()
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"policy file is malformed: {exc}") from exc
        return cls(rules=rules + DEFAULT_RULES, **numbers)


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
