"""A bounded in-memory front for a store that one process owns (the daemon's local store).

Recently used entries are answered from memory, so a local hit never leaves the event loop;
everything is written through to disk, which stays the source of truth across restarts. Only a
process that owns its store directory may keep such a front: another process writing the same
directory would not invalidate it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["HotFront"]

V = TypeVar("V")


@dataclass(frozen=True)
class _Slot(Generic[V]):
    value: V
    size: int
    tag: str | None
    keep_until: float


class HotFront(Generic[V]):
    """Values by key, least recently used evicted past ``max_bytes`` (pure: the clock is given
    to each call)."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._slots: OrderedDict[str, _Slot[V]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def volume(self) -> int:
        """Bytes held."""
        return self._bytes

    def get(self, key: str, now: float) -> V | None:
        """The value for ``key`` while it is kept, refreshing its recency."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        if now >= slot.keep_until:
            self.discard(key)
            return None
        self._slots.move_to_end(key)
        return slot.value

    def put(self, key: str, value: V, *, keep_until: float, tag: str | None = None) -> None:
        """Hold ``value`` until ``keep_until``; a value larger than the whole front is not held."""
        self.discard(key)
        size = self._size_of(value)
        if size > self.max_bytes:
            return
        self._slots[key] = _Slot(value, size, tag, keep_until)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._slots.popitem(last=False)
            self._bytes -= evicted.size

    def discard(self, key: str) -> None:
        """Forget ``key``."""
        slot = self._slots.pop(key, None)
        if slot is not None:
            self._bytes -= slot.size

    def discard_tag(self, tag: str) -> int:
        """Forget every value put with ``tag``; returns how many."""
        keys = [key for key, slot in self._slots.items() if slot.tag == tag]
        for key in keys:
            self.discard(key)
        return len(keys)
