"""Rendezvous (highest random weight) hashing of entry ids over hubs (pure).

Every runner orders the hubs the same way for a given id, so one id always meets at one hub
(and coalesces there); when that hub is down, its ids move to their next choice and no other
id moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["rank_hubs"]


def _weight(hub: str, entry_id: bytes) -> bytes:
    return hashlib.blake2b(entry_id, key=hub.encode()[:64], digest_size=8).digest()


def rank_hubs(hubs: Sequence[str], entry_id: bytes) -> list[str]:
    """``hubs`` (peer ids) from most to least preferred for ``entry_id``."""
    return sorted(hubs, key=lambda hub: (_weight(hub, entry_id), hub), reverse=True)
