"""What a runner knows about GitHub's rate limits right now: until when each one holds.

Filled from GitHub's own answers (``x-ratelimit-reset``, ``retry-after``) and, for the limits a
fleet shares, from what the hub relays from other runners, so a fleet that met a secondary
limit sends one probe when it lifts rather than a burst while it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["RateGate"]

#: Limits further away than this are not believed (a broken clock, or a hostile member of the
#: fleet trying to stop it): after it, one probe asks GitHub again.
_HORIZON = 15 * 60.0


class RateGate:
    """Limit keys to the time they lift (epoch seconds)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def until(self, keys: Iterable[str], now: float) -> float | None:
        """The latest lift time among ``keys`` that is still ahead, or ``None``."""
        ahead = [self._until[key] for key in keys if self._until.get(key, 0.0) > now]
        return max(ahead) if ahead else None

    def note(self, key: str, until: float, now: float) -> None:
        """Remember that ``key`` holds until ``until`` (never further than 15 minutes)."""
        until = min(until, now + _HORIZON)
        if until > self._until.get(key, 0.0):
            self._until[key] = until

    def merge(self, limits: Mapping[str, float], now: float) -> None:
        """Take in limits another party reported."""
        for key, until in limits.items():
            self.note(key, until, now)

    def live(self, now: float) -> dict[str, float]:
        """The limits that still hold (expired ones are forgotten)."""
        self._until = {key: until for key, until in self._until.items() if until > now}
        return dict(self._until)
