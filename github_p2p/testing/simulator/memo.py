"""A bounded memo for pure renderings, so hot GETs skip re-hashing and re-encoding seed data."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["Memo", "encode_json", "encode_json_list"]

T = TypeVar("T")


def encode_json(payload: Any) -> bytes:
    """Compact JSON, as GitHub sends it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def encode_json_list(items: list[bytes]) -> bytes:
    """A JSON array of already-encoded items (byte-identical to encoding the list at once)."""
    return b"[" + b",".join(items) + b"]"


class Memo:
    """Results of pure functions by key; emptied when full rather than tracking recency.

    Callers hold the service lock, so no locking here. Keys must capture every input.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The value for ``key``, computed by ``factory`` the first time."""
        try:
            value: T = self._values[key]
        except KeyError:
            if len(self._values) >= self._max_entries:
                self._values.clear()
            value = self._values[key] = factory()
        return value
