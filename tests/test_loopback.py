"""Which hosts count as this machine (github_p2p/core/loopback.py)."""

from __future__ import annotations

import pytest

from github_p2p.core.loopback import is_loopback_host


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("localhost", True),
    ("", False), (None, False), ("10.0.0.1", False), ("::2", False), ("[::1]", False),
    ("localhost.evil.example", False), ("LOCALHOST.", False), ("example.com", False),
])
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
