"""Which host names stay on this machine (pure)."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_host"]


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (an IP address without brackets, or a name) is this machine's loopback:
    ``localhost`` or an address in 127.0.0.0/8 or ``::1``. No name is resolved."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
