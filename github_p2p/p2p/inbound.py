"""Reclaiming the swarm's handler tasks of closed inbound connections (a py-libp2p 0.8.1 defect).

See :attr:`github_p2p.p2p.host.Workaround.RECLAIM_INBOUND_TASKS`: the swarm's handler of each
inbound connection ends in a barrier that lasts until the swarm stops, so every connection a node
ever accepted stays alive in memory. :class:`InboundHandlers` runs each handler of one swarm in
its own cancel scope and sweeps those whose socket has closed.
"""

from __future__ import annotations

from typing import Any

import trio
from libp2p.network.swarm import Swarm
from multiaddr import Multiaddr

__all__ = ["InboundHandlers"]


class InboundHandlers:
    """Ends the swarm's per-connection handler tasks once their connection is closed.

    See :attr:`Workaround.RECLAIM_INBOUND_TASKS`. Only the swarm we built is changed: its
    ``_handle_inbound_connection`` (looked up on the instance for every accepted connection)
    is wrapped, on this instance, in a cancel scope the sweeper can cancel.
    """

    def __init__(self, swarm: Swarm) -> None:
        self._handle = swarm._handle_inbound_connection
        #: Live handlers: cancel scope -> (raw stream, sweeps that saw its socket closed).
        self._live: dict[trio.CancelScope, tuple[Any, int]] = {}
        swarm._handle_inbound_connection = self._reclaimable  # type: ignore[method-assign]

    async def _reclaimable(self, read_write_closer: Any, maddr: Multiaddr) -> None:
        with trio.CancelScope() as scope:
            self._live[scope] = (read_write_closer, 0)
            try:
                await self._handle(read_write_closer, maddr)
            finally:
                del self._live[scope]

    @property
    def live(self) -> int:
        """Handler tasks alive now (one per accepted connection not yet reclaimed)."""
        return len(self._live)

    async def sweep(self, interval: float) -> None:
        """Every ``interval`` s, cancel handlers whose socket was already closed last time.

        Waiting a whole interval after the socket closed leaves a failing handshake the time to
        clean up on its own; what is cancelled then only awaits the swarm's end.
        """
        while True:
            await trio.sleep(interval)
            for scope, (stream, closed_sweeps) in list(self._live.items()):
                if not _socket_closed(stream):
                    continue
                if closed_sweeps >= 1:
                    scope.cancel()
                else:
                    self._live[scope] = (stream, closed_sweeps + 1)


def _socket_closed(read_write_closer: Any) -> bool:
    # TrioTCPStream -> trio.SocketStream -> socket; any other transport is never reclaimed.
    sock = getattr(getattr(read_write_closer, "stream", None), "socket", None)
    fileno = getattr(sock, "fileno", None)
    return callable(fileno) and fileno() == -1
