"""What a hub sees of a work queue: opaque ids and sealed items (pure).

A runner names a queue by (run id, run attempt, name) within its scope (the repository); the hub
only ever sees a 32-byte *queue id* (an HMAC of the run id and name under the scope's key) and
the attempt number, and for each item a keyed *digest* (so identical submissions compare equal
and a re-run can tell which items already succeeded) and an AES-GCM *envelope* bound to the
item's queue and position (the hub cannot move an item to another queue or slot unnoticed).

Without a fleet the daemon runs its queues itself; :class:`PlainSealer` then keeps items as
plain text on the runner's own disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Protocol

from github_p2p.core.keys import FleetKeys, entry_id
from github_p2p.core.queue import QueueKey, QueueLimits
from github_p2p.core.sealing import open_envelope, seal
from github_p2p.errors import ConfigError, IntegrityError, QueueLimitError

__all__ = [
    "DEFAULT_RUN_ID",
    "MAX_NAME",
    "FleetSealer",
    "PlainSealer",
    "QueueRef",
    "QueueSealer",
    "check_item",
]

#: The run id outside GitHub Actions (no ``GITHUB_RUN_ID``).
DEFAULT_RUN_ID: Final = "local"
#: Bound on a queue name and on a run id.
MAX_NAME: Final = 128


def _printable_line(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise ConfigError(f"{what} must be 1..{limit} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ConfigError(f"{what} must not contain control characters")
    return value


@dataclass(frozen=True)
class QueueRef:
    """A queue as runners name it: ``name`` within run ``run_id``, attempt ``attempt``.

    The scope (``GITHUB_REPOSITORY``) is implied by the keys that seal it.
    """

    name: str
    run_id: str = DEFAULT_RUN_ID
    attempt: int = 1

    def __post_init__(self) -> None:
        _printable_line(self.name, "a queue name", MAX_NAME)
        _printable_line(self.run_id, "a run id", MAX_NAME)
        if isinstance(self.attempt, bool) or not isinstance(self.attempt, int) or not (
                1 <= self.attempt <= 2**31 - 1):
            raise ConfigError("the run attempt must be a positive integer")

    def __str__(self) -> str:
        return f"{self.name!r} (run {self.run_id}, attempt {self.attempt})"


def check_item(item: object, limits: QueueLimits) -> str:
    """An item: one line of text of at most ``limits.max_item_bytes`` UTF-8 bytes."""
    if not isinstance(item, str) or not item:
        raise ConfigError("an item must be a non-empty string")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in item):
        raise ConfigError(f"item {item[:40]!r} contains control characters")
    try:
        size = len(item.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ConfigError("an item must be valid text") from exc
    if size > limits.max_item_bytes:
        raise QueueLimitError(f"item {item[:40]!r}... is {size} bytes; the limit is "
                              f"{limits.max_item_bytes}")
    return item


class QueueSealer(Protocol):
    """Turns queue names and items into what the hub stores, and back."""

    def key(self, ref: QueueRef) -> QueueKey:
        """The hub's key of ``ref``."""

    def digest(self, ref: QueueRef, item: str) -> bytes:
        """A 32-byte id of the item's content within the run's queue."""

    def seal(self, ref: QueueRef, index: int, item: str) -> bytes:
        """The envelope of ``item`` at ``index``."""

    def open(self, ref: QueueRef, index: int, envelope: bytes) -> str:
        """The item in ``envelope``; raises :class:`~github_p2p.errors.IntegrityError`."""


def _label(*parts: str) -> str:
    # Newlines cannot occur in names or items, so the parts cannot run into each other.
    return "\n".join(("github-p2p/queue/v1", *parts))


@dataclass(frozen=True)
class FleetSealer:
    """Ids are HMACs under the scope's key; items are AES-GCM sealed (see ``core.sealing``)."""

    keys: FleetKeys

    def key(self, ref: QueueRef) -> QueueKey:
        """See :class:`QueueSealer`."""
        return QueueKey(entry_id(self.keys, _label("id", ref.run_id, ref.name)), ref.attempt)

    def digest(self, ref: QueueRef, item: str) -> bytes:
        """See :class:`QueueSealer`."""
        return entry_id(self.keys, _label("item", ref.run_id, ref.name, item))

    def _slot(self, ref: QueueRef, index: int) -> bytes:
        return entry_id(self.keys, _label("slot", ref.run_id, ref.name, str(index)))

    def seal(self, ref: QueueRef, index: int, item: str) -> bytes:
        """See :class:`QueueSealer`."""
        return seal(self.keys, self._slot(ref, index), item.encode("utf-8"))

    def open(self, ref: QueueRef, index: int, envelope: bytes) -> str:
        """See :class:`QueueSealer`."""
        plain = open_envelope(self.keys, self._slot(ref, index), envelope)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError as exc:  # authenticated, so only a buggy sealer gets here
            raise IntegrityError(f"item {index} is not text") from exc


@dataclass(frozen=True)
class PlainSealer:
    """For a daemon that runs its queues itself: unkeyed ids, items kept as they are."""

    scope: str = ""

    def key(self, ref: QueueRef) -> QueueKey:
        """See :class:`QueueSealer`."""
        label = _label("id", self.scope, ref.run_id, ref.name).encode()
        return QueueKey(hashlib.sha256(label).digest(), ref.attempt)

    def digest(self, ref: QueueRef, item: str) -> bytes:
        """See :class:`QueueSealer`."""
        return hashlib.sha256(_label("item", ref.run_id, ref.name, item).encode()).digest()

    def seal(self, ref: QueueRef, index: int, item: str) -> bytes:
        """See :class:`QueueSealer`."""
        return item.encode("utf-8")

    def open(self, ref: QueueRef, index: int, envelope: bytes) -> str:
        """See :class:`QueueSealer`."""
        try:
            return envelope.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IntegrityError(f"item {index} is not text") from exc
