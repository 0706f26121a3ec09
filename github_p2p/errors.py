"""The one exception tree of github-p2p.

Every error the package raises on purpose derives from :class:`GitHubP2PError`, and the branch
says what went wrong and whose fault it was: bad configuration (:class:`ConfigError`), a sealed
entry that must not be served (:class:`IntegrityError`), a peer that broke the wire protocol
(:class:`RemoteProtocolError`) or we did (:class:`LocalProtocolError`), GitHub refusing or failing
(:class:`UpstreamError`), or the fleet being out of reach (:class:`FleetError`). Foreign
exceptions are translated at the boundary with ``raise ... from exc``.

Messages never contain secrets, tokens or keys.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AdmissionError",
    "CacheStoreError",
    "ConfigError",
    "DigestMismatchError",
    "EnvelopeFormatError",
    "FleetError",
    "FleetUnavailableError",
    "ForeignKeyError",
    "GitHubHTTPError",
    "GitHubP2PError",
    "GraphQLRequestError",
    "GraphQLResponseError",
    "IntegrityError",
    "LocalProtocolError",
    "ProtocolError",
    "QueueConflictError",
    "QueueError",
    "QueueLimitError",
    "QueueNotFoundError",
    "RateLimitExceededError",
    "RemoteProtocolError",
    "SecondaryRateLimitError",
    "SharedStateUnavailableError",
    "StaleLeaseError",
    "TamperedEntryError",
    "UpstreamError",
    "UpstreamUnavailableError",
    "WrongEntryIdError",
]


class GitHubP2PError(Exception):
    """Root of every error github-p2p raises on purpose."""


class ConfigError(GitHubP2PError):
    """Usage or configuration is wrong (the CLI exits 2 with this message)."""


# --- sealed entries -------------------------------------------------------------------------


class IntegrityError(GitHubP2PError):
    """A sealed entry failed a check; it is counted and never served."""


class EnvelopeFormatError(IntegrityError):
    """The envelope is truncated, too large, or has an unknown version byte."""


class ForeignKeyError(IntegrityError):
    """The envelope was sealed with another fleet key (another secret or scope)."""


class WrongEntryIdError(IntegrityError):
    """The envelope belongs to another entry id (a replay under a different key)."""


class TamperedEntryError(IntegrityError):
    """The AEAD tag does not verify: the envelope was modified in transit or at rest."""


class DigestMismatchError(IntegrityError):
    """The body does not match the content digest recorded when it was sealed."""


# --- wire protocol ----------------------------------------------------------------------------


class ProtocolError(GitHubP2PError):
    """The fleet wire protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol forbids (for example an oversized frame)."""


class RemoteProtocolError(ProtocolError):
    """The remote side sent something the protocol forbids."""


# --- GitHub -----------------------------------------------------------------------------------


class GraphQLRequestError(GitHubP2PError):
    """A GraphQL request body is malformed: not JSON, no query, a syntax error, an unknown
    or ambiguous operation, variables that are not an object, or past a size bound."""


class UpstreamError(GitHubP2PError):
    """GitHub could not give a usable answer."""


class GitHubHTTPError(UpstreamError):
    """GitHub answered with an error status (4xx or 5xx) that the caller asked to raise."""

    def __init__(self, status: int, message: str, url: str = "") -> None:
        self.status = status
        self.url = url
        super().__init__(f"GitHub answered {status} for {url or 'the request'}: {message}")


class RateLimitExceededError(GitHubHTTPError):
    """The primary rate limit is exhausted and the reset is too far away to wait for."""

    def __init__(self, status: int, message: str, url: str = "", reset_at: float = 0.0) -> None:
        self.reset_at = reset_at
        super().__init__(status, message, url)


class SecondaryRateLimitError(GitHubHTTPError):
    """A secondary rate limit persisted through every allowed retry."""


class GraphQLResponseError(UpstreamError):
    """GitHub answered a GraphQL call with ``errors`` (``data`` may hold a partial answer)."""

    def __init__(self, errors: Any, data: Any = None) -> None:
        self.errors = errors
        self.data = data
        messages = [e.get("message", "") if isinstance(e, dict) else str(e)
                    for e in (errors if isinstance(errors, list) else [errors])]
        super().__init__("GitHub answered the GraphQL call with errors: "
                         + "; ".join(m for m in messages if m)[:500])


class UpstreamUnavailableError(UpstreamError):
    """GitHub could not be reached (connection error or timeout after every retry)."""

    def __init__(self, message: str, calls: int = 0) -> None:
        #: Requests that were sent (and counted) before giving up.
        self.calls = calls
        super().__init__(message)


# --- fleet and local store --------------------------------------------------------------------


class FleetError(GitHubP2PError):
    """The fleet cache could not serve a request."""


class FleetUnavailableError(FleetError):
    """No hub is reachable; callers fall back to the local cache and GitHub."""


class AdmissionError(FleetUnavailableError):
    """A hub that admits runners by GitHub OIDC token refused this one, or the runner could not
    get a token; the message says why (never the token itself)."""


class SharedStateUnavailableError(FleetError):
    """The state hubs share (Redis) is out of reach; the hub serves from its own fallback."""


class CacheStoreError(GitHubP2PError):
    """The local cache store failed in a way that could not be recovered from."""


# --- work queues ------------------------------------------------------------------------------


class QueueError(GitHubP2PError):
    """A work-queue operation was refused; the message says why."""


class QueueConflictError(QueueError):
    """A different list was submitted under a queue key that already holds one."""


class QueueNotFoundError(QueueError):
    """No queue exists under that key (nobody submitted it for this run and attempt)."""


class StaleLeaseError(QueueError):
    """A lease token that no longer holds the item: it lapsed, or another runner has it now."""


class QueueLimitError(QueueError):
    """A bound was exceeded: items per queue, item size, or queues per peer."""
