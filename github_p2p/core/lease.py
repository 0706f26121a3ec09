"""Fill leases, the one representation (pure).

When N runners miss the same resource at once, the hub lets one of them fetch it: that runner
holds a *fill lease* and must either put the entry (the fill) or give the lease back. The others
wait for the fill. Every layer speaks of a lease answer with the same type; only what rides along
differs: sealed bytes between the hub and a runner's transport, an opened
:class:`~github_p2p.core.entry.CacheEntry` once the runner has verified it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

__all__ = ["Lease", "LeaseAnswer", "LeaseOutcome"]

T = TypeVar("T")


class LeaseOutcome(str, Enum):
    """How a hub answered a lease request (the values are the wire's)."""

    #: A fresh entry was there.
    HIT = "hit"
    #: Nobody is fetching it: the asker fills it (a stale entry may ride along).
    GRANTED = "granted"
    #: Another runner was fetching it; the asker waited and got its fill.
    FILLED = "filled"
    #: Another runner is fetching it and did not finish within the wait.
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Lease:
    """The right to fill one entry, proven by ``token``, for ``ttl`` seconds."""

    token: str = field(repr=False)
    ttl: float


@dataclass(frozen=True)
class LeaseAnswer(Generic[T]):
    """A hub's answer to a lease request.

    ``payload`` is the entry that came along (sealed bytes or an opened entry, ``None`` when
    there was none), ``fresh`` whether the hub holds it as fresh, and ``lease`` is set exactly
    when the outcome is :attr:`LeaseOutcome.GRANTED`.
    """

    outcome: LeaseOutcome
    payload: T | None = None
    fresh: bool = False
    lease: Lease | None = None

    def __post_init__(self) -> None:
        if (self.lease is not None) != (self.outcome is LeaseOutcome.GRANTED):
            raise ValueError("a lease comes with a granted answer, and only with one")
