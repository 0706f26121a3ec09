"""Multiaddr parsing for the fleet (pure: no sockets, no environment, no libp2p import).

The bootstrap peers come from one secret, ``MCP_P2P_BOOTSTRAP_PEERS``: multiaddrs separated by
commas, spaces or newlines. They are validated up front, so a typo is named at once rather than
found by a dial that fails minutes later: :func:`split_bootstrap_peers` keeps the good entries
and names the bad ones (a daemon starts with the good ones and warns), and
:func:`parse_bootstrap_peers` refuses the whole list (what a node publishes must be right).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from multiaddr import Multiaddr

from github_p2p.errors import ConfigError

__all__ = ["BootstrapPeers", "is_host", "parse_bootstrap_peers", "split_bootstrap_peers",
           "tcp_multiaddr"]

_DIAL_PROTOCOLS = frozenset({"ip4", "ip6", "dns", "dns4", "dns6"})
_SEPARATORS = re.compile(r"[\s,]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class BootstrapPeers:
    """The entries of a bootstrap list: usable ones (canonical, in order, without duplicates)
    and the malformed ones with the reason, each ``(entry, reason)``."""

    good: tuple[str, ...]
    bad: tuple[tuple[str, str], ...]


def split_bootstrap_peers(text: str) -> BootstrapPeers:
    """Split ``MCP_P2P_BOOTSTRAP_PEERS`` and sort its entries into good and malformed ones."""
    good: list[str] = []
    bad: list[tuple[str, str]] = []
    for entry in _SEPARATORS.split(text.strip()):
        if not entry:
            continue
        try:
            canonical = _validate_bootstrap_peer(entry)
        except ConfigError as exc:
            bad.append((entry, str(exc)))
            continue
        if canonical not in good:
            good.append(canonical)
    return BootstrapPeers(tuple(good), tuple(bad))


def parse_bootstrap_peers(text: str) -> list[str]:
    """Split and validate ``MCP_P2P_BOOTSTRAP_PEERS``: multiaddrs separated by commas or spaces.

    Each entry must be ``/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>/p2p/<peer id>``. Returns the
    canonical form of each, duplicates dropped, in order. Raises
    :class:`~github_p2p.errors.ConfigError` naming the first malformed entry.
    """
    peers: list[str] = []
    for entry in _SEPARATORS.split(text.strip()):
        if not entry:
            continue
        canonical = _validate_bootstrap_peer(entry)
        if canonical not in peers:
            peers.append(canonical)
    return peers


def tcp_multiaddr(host: str, port: int) -> Multiaddr:
    """``/ip4|ip6/<host>/tcp/<port>`` for an IP literal, ``/dns/<host>/tcp/<port>`` otherwise."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return Multiaddr(f"/dns/{host}/tcp/{port}")
    return Multiaddr(f"/ip{ip.version}/{ip}/tcp/{port}")


def is_host(text: str) -> bool:
    """Whether ``text`` is an IP literal or a syntactically valid DNS name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOSTNAME.fullmatch(text))
    return True


def _validate_bootstrap_peer(entry: str) -> str:
    expected = "expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>/p2p/<peer id>"
    shown = entry if len(entry) <= 200 else entry[:200] + "..."
    try:
        addr = Multiaddr(entry)
        names = [p.name for p in addr.protocols()]
        port = int(addr.value_for_protocol("tcp")) if "tcp" in names else 0
        canonical = str(addr)  # decoding the peer id (a libp2p-key CID) can fail only here
    except Exception as exc:  # ParseError and friends
        reason = str(exc).split(" (", 1)[0][:200]
        raise ConfigError(f"malformed bootstrap peer {shown!r}: {reason}; {expected}") from exc
    if len(names) != 3 or names[0] not in _DIAL_PROTOCOLS or names[1:] != ["tcp", "p2p"]:
        raise ConfigError(f"malformed bootstrap peer {shown!r}: {expected}")
    if not 1 <= port <= 65535:
        raise ConfigError(f"malformed bootstrap peer {shown!r}: port must be 1 to 65535")
    return canonical
