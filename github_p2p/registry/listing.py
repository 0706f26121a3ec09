"""One read pass over a registry, classified (pure).

Every entry of a registry (an issue comment, a file) is one of: a record that opens with the
fleet's registry key (live or expired), a *forged* entry (our marker, but sealed with another
key, tampered with, or copied under another peer's marker), a *malformed* one (our marker, but
not a well-formed sealed record), or *unrelated* (no marker: someone's ordinary comment).
Only records that open are ever used; the rest are counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from github_p2p.core.keys import FleetKeys
from github_p2p.errors import EnvelopeFormatError, IntegrityError
from github_p2p.registry.record import RegistryRecord, SealedRecord, open_record

__all__ = ["Found", "Listing", "classify"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    """A record that opened, and where it is stored (a comment id, a file name)."""

    record: RegistryRecord
    locator: str


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

    def __post_init__(self) -> None:
        # Several entries for one peer (a restart before the old one was pruned): the
        # latest expiry wins.
        best: dict[str, RegistryRecord] = {}
        for item in self.found:
            record = item.record
            if record.is_live(self.now) and (
                record.peer_id not in best or record.expires_at > best[record.peer_id].expires_at
            ):
                best[record.peer_id] = record
        object.__setattr__(self, "_live", tuple(best[k] for k in sorted(best)))

    @property
    def live(self) -> tuple[RegistryRecord, ...]:
        """Live records, one per peer id, sorted by peer id."""
        return self._live

    @property
    def expired(self) -> tuple[Found, ...]:
        """Records that opened but have expired (the bootstrap node prunes these)."""
        return tuple(item for item in self.found if not item.record.is_live(self.now))

    @property
    def duplicates(self) -> int:
        """Live entries beyond the first of their peer."""
        return sum(1 for item in self.found if item.record.is_live(self.now)) - len(self._live)

    def locators(self, peer_id: str) -> tuple[str, ...]:
        """Where records of ``peer_id`` are stored, in registry order."""
        return tuple(item.locator for item in self.found if item.record.peer_id == peer_id)

    def counts(self) -> dict[str, int]:
        """The figures of this pass, for statistics and ``registry list``."""
        return {"entries": self.entries, "live": len(self._live),
                "expired": len(self.expired), "duplicates": self.duplicates,
                "forged": self.forged, "malformed": self.malformed,
                "unrelated": self.unrelated}


def classify(
    keys: FleetKeys,
    documents: Iterable[tuple[str, str]],
    now: float,
    parse: Callable[[str], SealedRecord | None],
) -> Listing:
    """Open every ``(locator, text)`` document with ``parse`` and the fleet's registry keys."""
    found: list[Found] = []
    entries = forged = malformed = unrelated = 0
    for locator, text in documents:
        entries += 1
        try:
            sealed = parse(text)
            if sealed is None:
                unrelated += 1
                continue
            found.append(Found(open_record(keys, sealed), locator))
        except EnvelopeFormatError as exc:
            malformed += 1
            log.debug("registry entry %s is malformed: %s", locator, exc)
        except IntegrityError as exc:
            # Anyone can comment on a public issue: this is expected, never trusted.
            forged += 1
            log.debug("registry entry %s is not ours: %s", locator, exc)
    return Listing(now, tuple(found), entries, forged, malformed, unrelated)
