"""Fills and releases announced to the waiters of one hub.

A hub on Redis keeps one subscription to its fleet's announcements and fans it out here: the
waiters of an entry id share one event, which the next announcement for that id sets. A waiter
takes the event *before* it checks the store, so an announcement made after the check always
wakes it (NOTES.md); when announcements may have been missed (the subscription broke), every
waiter is woken to look again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["FillNotifier"]


class FillNotifier:
    """Fans the hub's one subscription out to local waiters: those of an id share an event."""

    def __init__(self) -> None:
        self._events: dict[bytes, trio.Event] = {}
        self._watchers: dict[bytes, int] = {}

    @contextmanager
    def watch(self, entry_id: bytes) -> Iterator[trio.Event]:
        """The event the next fill or release of ``entry_id`` sets; enter it before checking."""
        event = self._events.get(entry_id)
        if event is None:
            event = self._events[entry_id] = trio.Event()
        self._watchers[entry_id] = self._watchers.get(entry_id, 0) + 1
        try:
            yield event
        finally:
            left = self._watchers[entry_id] - 1
            if left:
                self._watchers[entry_id] = left
            else:
                del self._watchers[entry_id]
                self._events.pop(entry_id, None)

    def notify(self, entry_id: bytes) -> None:
        """``entry_id`` was filled or its lease given back: wake its waiters."""
        event = self._events.pop(entry_id, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        """Announcements may have been missed (the subscription broke): wake every waiter."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()
