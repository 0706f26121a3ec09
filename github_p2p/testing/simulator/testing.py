"""Helpers for tests that drive a simulator: a manual clock and secret sealing."""

from __future__ import annotations

import base64
import threading

from nacl.public import PublicKey, SealedBox

__all__ = ["ManualClock", "seal_secret"]


class ManualClock:
    """A clock that only moves when told to; pass it as ``GitHubSimulator(clock=...)``."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += seconds


def seal_secret(public_key: str, value: str) -> str:
    """Seal ``value`` to a base64 Curve25519 public key, the way Actions secrets are uploaded."""
    box = SealedBox(PublicKey(base64.b64decode(public_key)))
    return base64.b64encode(box.encrypt(value.encode())).decode()
