"""One read pass over a registry, classified, and what a reader believes of it (pure).

Every entry of a registry (an issue comment, a file) is one of: a record that opens with the
fleet's registry key, a *forged* entry (our marker, but sealed with another key, tampered with,
or copied under another peer's marker), a *malformed* one (our marker, but not a well-formed
sealed record), or *unrelated* (no marker: someone's ordinary comment). Only records that open
are ever used; the rest are counted.

A record that opens was made by a key holder, but not necessarily *now*: anyone who can read the
issue can post a copy of an old comment again. So a reader decides for itself:

* **the lifetime**: a record is believed until the earliest of its own ``expires_at``,
  ``max_age`` after it was issued, and ``max_age`` after the registry says it was posted (the
  comment's ``updated_at``, the file's time; never later than the read). ``max_age`` is a few
  heartbeat periods. A record issued more than :data:`CLOCK_SKEW` after it was posted claims to
  come from the future and is not believed at all. A key holder's record "valid for ten years"
  therefore lives ``max_age`` unless it is re-posted, and no copy outlives its issue time by more;
* **which record of a peer counts**: the newest, by (run start, sequence number, issue time).
  When that is a withdrawal, the peer is gone: copies of its earlier records, posted again by
  anyone, are older and change nothing. A withdrawal is kept (and so keeps working) until it
  expires itself, ``max_age`` after it was issued; by then every record issued before it has
  expired too.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from github_p2p.core.keys import FleetKeys
from github_p2p.errors import EnvelopeFormatError, IntegrityError
from github_p2p.registry.record import RegistryRecord, SealedRecord, open_record

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_MAX_AGE",
    "Document",
    "Found",
    "Listing",
    "believed_until",
    "classify",
]

log = logging.getLogger(__name__)

#: Longest a reader believes any record: four heartbeats of the default interval (600 s).
DEFAULT_MAX_AGE = 2400.0
#: How far a record's issue time may be ahead of its posting time (clocks differ a little).
CLOCK_SKEW = 300.0


@dataclass(frozen=True)
class Document:
    """One entry of a registry as read: where it is, its text, and when the registry says it
    was last written (``None`` when it cannot tell)."""

    locator: str
    text: str
    posted_at: float | None = None


def believed_until(record: RegistryRecord, posted_at: float, max_age: float) -> float:
    """When a reader stops believing ``record`` posted at ``posted_at`` (see the module)."""
    if record.issued_at > posted_at + CLOCK_SKEW:
        return -math.inf
    return min(record.expires_at, record.issued_at + max_age, posted_at + max_age)


@dataclass(frozen=True)
class Found:
    """A record that opened, where it is stored (a comment id, a file name), when it was
    posted, and until when a reader believes it."""

    record: RegistryRecord
    locator: str
    posted_at: float
    until: float


@dataclass(frozen=True)
class Listing:
    """What one read pass saw, as of ``now``."""

    now: float
    found: tuple[Found, ...] = ()
    entries: int = 0
    forged: int = 0
    malformed: int = 0
    unrelated: int = 0
    _live: tuple[RegistryRecord, ...] = field(init=False, repr=False, compare=False)
    _withdrawals: int = field(init=False, repr=False, compare=False)
    _superseded: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        newest: dict[str, Found] = {}
        for item in self.found:
            if item.until <= self.now:
                continue
            best = newest.get(item.record.peer_id)
            if best is None or item.record.order > best.record.order:
                newest[item.record.peer_id] = item
        live = tuple(
            # What readers believe, not what the record claims.
            dataclasses.replace(newest[k].record, expires_at=newest[k].until)
            for k in sorted(newest) if not newest[k].record.withdrawn)
        believed = sum(1 for item in self.found if item.until > self.now)
        object.__setattr__(self, "_live", live)
        object.__setattr__(self, "_withdrawals", len(newest) - len(live))
        object.__setattr__(self, "_superseded", believed - len(newest))

    @property
    def live(self) -> tuple[RegistryRecord, ...]:
        """Live records, one per peer id (its newest, unless withdrawn), sorted by peer id;
        each with ``expires_at`` set to when readers stop believing it."""
        return self._live

    @property
    def expired(self) -> tuple[Found, ...]:
        """Records that opened but are no longer believed (the bootstrap node prunes these)."""
        return tuple(item for item in self.found if item.until <= self.now)

    @property
    def duplicates(self) -> int:
        """Unexpired entries that a newer record of their peer supersedes."""
        return self._superseded

    @property
    def withdrawals(self) -> int:
        """Peers whose newest record is a withdrawal."""
        return self._withdrawals

    def locators(self, peer_id: str) -> tuple[str, ...]:
        """Where records of ``peer_id`` are stored, in registry order."""
        return tuple(item.locator for item in self.found if item.record.peer_id == peer_id)

    def counts(self) -> dict[str, int]:
        """The figures of this pass, for statistics and ``registry list``."""
        return {"entries": self.entries, "live": len(self._live),
                "expired": len(self.expired), "duplicates": self.duplicates,
                "withdrawals": self.withdrawals, "forged": self.forged,
                "malformed": self.malformed, "unrelated": self.unrelated}


def classify(
    keys: FleetKeys,
    documents: Iterable[Document],
    now: float,
    parse: Callable[[str], SealedRecord | None],
    max_age: float = DEFAULT_MAX_AGE,
) -> Listing:
    """Open every document with ``parse`` and the fleet's registry keys; records are believed
    at most ``max_age`` seconds (see the module)."""
    found: list[Found] = []
    entries = forged = malformed = unrelated = 0
    for document in documents:
        entries += 1
        try:
            sealed = parse(document.text)
            if sealed is None:
                unrelated += 1
                continue
            record = open_record(keys, sealed)
        except EnvelopeFormatError as exc:
            malformed += 1
            log.debug("registry entry %s is malformed: %s", document.locator, exc)
            continue
        except IntegrityError as exc:
            # Anyone can comment on a public issue: this is expected, never trusted.
            forged += 1
            log.debug("registry entry %s is not ours: %s", document.locator, exc)
            continue
        # A time ahead of the read is not believed: the read is what we know happened.
        posted = now if document.posted_at is None else min(document.posted_at, now)
        found.append(Found(record, document.locator, posted,
                           believed_until(record, posted, max_age)))
    return Listing(now, tuple(found), entries, forged, malformed, unrelated)
