"""The port rules, in one place: the daemon, the command line and the GitHub Action use them.

Standard library only and free of package imports, so the action's scripts load this file by
path with whatever Python the runner has, before github-p2p is installed.
"""

from __future__ import annotations

__all__ = ["HTTP_PORT_OFFSET", "HUB_HTTP_PORT", "HUB_PORT", "default_http_port", "default_port"]

#: The bootstrap node's libp2p port and its loopback HTTP port (dashboard, JSON, metrics).
HUB_PORT = 9100
HUB_HTTP_PORT = 9180
#: A runner's local endpoint listens this far below its libp2p port: 9000/9001/9002 →
#: 8700/8701/8702.
HTTP_PORT_OFFSET = 300

_ARCH_PORTS = {"X64": 9000, "ARM64": 9001}
_OTHER_ARCH_PORT = 9002
#: Below this, ports are privileged: a derived HTTP port there becomes "any free port".
_FIRST_UNPRIVILEGED = 1024


def default_port(arch: str) -> int:
    """The libp2p port of a ``runner.arch``: X64 9000, ARM64 9001, anything else 9002."""
    return _ARCH_PORTS.get(arch.strip().upper(), _OTHER_ARCH_PORT)


def default_http_port(port: int) -> int:
    """A runner's HTTP endpoint port for libp2p ``port``: ``port`` - 300, or 0 (any free port,
    reported in the ready file) when that would be a privileged port."""
    derived = port - HTTP_PORT_OFFSET
    return derived if derived >= _FIRST_UNPRIVILEGED else 0
