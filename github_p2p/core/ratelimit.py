"""Rate-limit headers and retry decisions (pure).

GitHub's rules (see docs/NOTES): a primary limit exhausted answers 403/429 with
``x-ratelimit-remaining: 0`` and a ``reset`` epoch; a secondary limit answers 403/429 with
``retry-after`` seconds, or without it, in which case one waits at least a minute and backs off
exponentially. 5xx and connection failures are retried with jittered exponential backoff. Every
path is bounded: a retry budget and a longest acceptable wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "RateLimit",
    "RetryDecision",
    "RetrySettings",
    "api_resource",
    "decide_retry",
    "limit_until",
    "limits_under",
    "rate_limit_kind",
]

_SERVER_ERRORS = frozenset({500, 502, 503, 504})


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class RateLimit:
    """The ``x-ratelimit-*`` headers of one response."""

    limit: int | None
    remaining: int | None
    used: int | None
    reset: int | None
    resource: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        """Parse from a case-insensitive mapping (``requests``' headers are)."""
        return cls(
            limit=_int_header(headers, "x-ratelimit-limit"),
            remaining=_int_header(headers, "x-ratelimit-remaining"),
            used=_int_header(headers, "x-ratelimit-used"),
            reset=_int_header(headers, "x-ratelimit-reset"),
            resource=headers.get("x-ratelimit-resource"),
        )


@dataclass(frozen=True)
class RetrySettings:
    """Bounds on retrying: attempts after the first, and the longest single wait accepted."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    #: Longest wait we accept for ``retry-after`` or a primary reset; beyond it we give up
    #: (and may serve a stale entry) instead of stalling a CI job.
    max_wait: float = 60.0
    #: GitHub: without ``retry-after`` wait at least one minute after a secondary limit.
    secondary_floor: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_base < 0 or self.max_wait < 0:
            raise ValueError("retry settings must be non-negative")


@dataclass(frozen=True)
class RetryDecision:
    """Whether to send the request again, after how long, and why."""

    retry: bool
    delay: float
    reason: str


def rate_limit_kind(status: int, headers: Mapping[str, str], body_hint: str = "") -> str | None:
    """``"primary"`` or ``"secondary"`` when the answer is a rate limit, else ``None``.

    ``headers`` has lower-case names; ``body_hint`` is the start of the body (GitHub names a
    secondary limit there when it sends no ``retry-after``).
    """
    if (status == 200 and headers.get("x-ratelimit-resource") == "graphql"
            and '"RATE_LIMIT' in body_hint):
        # GitHub answers an exhausted GraphQL budget with a 200 and a RATE_LIMIT error.
        return "primary"
    if status not in (403, 429):
        return None
    if "retry-after" in headers:
        return "secondary"
    if headers.get("x-ratelimit-remaining", "").strip() == "0":
        return "primary"
    if status == 429 or "secondary rate limit" in body_hint.lower():
        return "secondary"
    return None


def decide_retry(
    *,
    status: int | None,
    headers: Mapping[str, str],
    attempt: int,
    now: float,
    settings: RetrySettings,
    jitter: float,
    body_hint: str = "",
    wait_for_limits: bool = True,
) -> RetryDecision:
    """Decide what to do after attempt number ``attempt`` (0-based) ended.

    ``status`` is ``None`` for a connection failure. ``jitter`` is a number in [0, 1) supplied
    by the caller (so this function stays deterministic under test). ``wait_for_limits`` false
    gives up at once on a rate limit (the caller has a stale answer to serve instead).
    """
    if attempt >= settings.max_retries:
        return RetryDecision(False, 0.0, "retry budget exhausted")
    backoff = min(settings.backoff_cap, settings.backoff_base * 2**attempt)
    if status is None or status in _SERVER_ERRORS:
        # Full jitter keeps a fleet of runners from retrying in lockstep.
        return RetryDecision(True, backoff * (0.5 + jitter / 2), "server error")
    kind = rate_limit_kind(status, headers, body_hint)
    if kind is not None and not wait_for_limits:
        return RetryDecision(False, 0.0, f"{kind} rate limit: answering from the cache")
    if kind == "secondary":
        after = _int_header(headers, "retry-after")
        delay = float(after) if after is not None else settings.secondary_floor * 2**attempt
        if delay > settings.max_wait:
            return RetryDecision(False, delay, "secondary rate limit wait too long")
        return RetryDecision(True, delay + jitter * 0.1, "secondary rate limit")
    if kind == "primary":
        reset = _int_header(headers, "x-ratelimit-reset")
        delay = max(0.0, reset - now) + 1.0 if reset is not None else settings.max_wait + 1
        if delay > settings.max_wait:
            return RetryDecision(False, delay, "primary rate limit exhausted")
        return RetryDecision(True, delay, "primary rate limit reset")
    return RetryDecision(False, 0.0, "not retryable")


def api_resource(path: str) -> str:
    """The rate-limit resource a request spends (``x-ratelimit-resource``'s names)."""
    if path == "/graphql":
        return "graphql"
    if path.startswith("/search/"):
        return "search"
    return "core"


def limit_until(status: int, headers: Mapping[str, str], body_hint: str, now: float,
                settings: RetrySettings) -> tuple[str, float] | None:
    """When an answer is a rate limit: its kind and until when it holds (epoch seconds).

    A primary limit holds until ``x-ratelimit-reset``; a secondary one for ``retry-after``
    seconds, or at least a minute when GitHub does not say (its documented advice).
    """
    kind = rate_limit_kind(status, headers, body_hint)
    if kind == "primary":
        reset = _int_header(headers, "x-ratelimit-reset")
        return kind, float(reset) if reset is not None else now + settings.secondary_floor
    if kind == "secondary":
        after = _int_header(headers, "retry-after")
        return kind, now + (float(after) if after is not None else settings.secondary_floor)
    return None


def limits_under(prefix: str, limits: Mapping[str, float]) -> dict[str, float]:
    """The rate limits kept under ``prefix`` (one repository's space on an OIDC hub), named
    without it: what a holder of that space reported and is told about."""
    return {key[len(prefix):]: until for key, until in limits.items() if key.startswith(prefix)}
