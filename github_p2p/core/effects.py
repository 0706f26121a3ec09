"""What the request flow asks its driver to do, and what the driver hands back (pure values).

The flow (:mod:`github_p2p.core.flow`) is a generator: it yields one *effect* at a time and is
sent the effect's *result*. It never touches a disk, a socket, a thread or the clock itself, so a
test drives it with plain values, and the two drivers (the synchronous one behind the in-process
``GitHubClient`` and the trio one in the daemon) only carry effects out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from github_p2p.core.cachekey import CacheKey
from github_p2p.core.entry import CacheEntry
from github_p2p.core.lease import Lease, LeaseAnswer
from github_p2p.core.stats import Outcome

__all__ = [
    "Answer",
    "AskFleet",
    "CheckLimit",
    "Effect",
    "Fetch",
    "Fetched",
    "FleetReply",
    "Invalidate",
    "NoteLimit",
    "ReadClock",
    "ReadLocal",
    "Release",
    "Share",
    "ShareResult",
    "Wait",
    "WriteLocal",
]


# --- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadClock:
    """Result: the current wall-clock time (epoch seconds)."""


@dataclass(frozen=True)
class ReadLocal:
    """Result: the local store's entry for ``local_id``, or ``None``."""

    local_id: str


@dataclass(frozen=True)
class AskFleet:
    """Result: a :class:`FleetReply` to a lease request for ``key``, waiting up to ``wait``."""

    key: CacheKey
    wait: float


@dataclass(frozen=True)
class Fetch:
    """Result: :class:`Fetched`, GitHub's answer to the request with these headers.

    ``retry_rate_limits`` false means: when GitHub signals a rate limit, return at once (the
    flow has a stale answer to give instead of waiting).
    """

    method: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes | None = field(default=None, repr=False)
    retry_rate_limits: bool = True


@dataclass(frozen=True)
class WriteLocal:
    """Result: ``None``. Keep ``entry`` in the local store for ``keep_for`` seconds."""

    local_id: str
    entry: CacheEntry
    keep_for: float
    tag: str


@dataclass(frozen=True)
class Share:
    """Result: a :class:`ShareResult`. Seal ``entry`` and put it in the fleet, filling ``lease``
    if one is given."""

    key: CacheKey
    entry: CacheEntry
    fresh_ttl: float
    keep_ttl: float
    lease: Lease | None


@dataclass(frozen=True)
class Release:
    """Result: ``True`` when the fleet took the lease back. Give ``lease`` back unfilled."""

    key: CacheKey
    lease: Lease


@dataclass(frozen=True)
class Invalidate:
    """Result: ``True`` when the fleet was told too. Forget these resources everywhere."""

    resources: tuple[str, ...]


@dataclass(frozen=True)
class CheckLimit:
    """Result: until when (epoch seconds) a known rate limit holds for any of ``keys``, or
    ``None``. A key names a limit: ``"core"`` for a secondary limit of the REST API (shared by
    the fleet), ``"core|<caller>"`` for one token's primary budget."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class NoteLimit:
    """Result: ``None``. Remember that the limit ``key`` holds until ``until``; ``shared``
    limits are told to the fleet, so it sends one probe rather than a burst."""

    key: str
    until: float
    shared: bool


@dataclass(frozen=True)
class Wait:
    """Result: ``None``. Sleep ``seconds`` (a rate limit is about to lift)."""

    seconds: float


Effect = (ReadClock | ReadLocal | AskFleet | Fetch | WriteLocal | Share | Release | Invalidate
          | CheckLimit | NoteLimit | Wait)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetReply:
    """The fleet's answer to :class:`AskFleet`, opened and verified by the driver.

    ``answer`` is ``None`` when the fleet could not be asked (no hub, a hub error);
    ``refused`` counts entries that came along but failed to open or verify.
    """

    answer: LeaseAnswer[CacheEntry] | None
    refused: int = 0


@dataclass(frozen=True)
class Fetched:
    """What GitHub answered (``status`` ``None``: unreachable), and the calls it cost."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)
    calls: int = 1


class ShareResult(str, Enum):
    """How a :class:`Share` went."""

    SHARED = "shared"
    #: The fleet could not be reached or refused the put (counted as a fleet error).
    FAILED = "failed"


# --- the final answer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How a request ends: what to send the caller and what to count.

    ``error`` is set when GitHub could not be reached and nothing cached could stand in: the
    driver raises it. ``notes`` names counters to add one to (``coalesced_waits``,
    ``fleet_errors``, ``integrity_failures``, ``too_large_to_share``, ``errors``).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    outcome: Outcome
    calls: int = 0
    entry: CacheEntry | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    error: str | None = None
