"""Messages over a libp2p stream: the codec's I/O edge.

A :class:`MessageChannel` reads bytes from a stream into a :class:`~.wire.FrameDecoder` and
writes encoded messages, one writer at a time. Any libp2p stream failure becomes ``None`` from
:meth:`receive` (the peer is gone: EOF, reset or error are the same to us) or a
:class:`~github_p2p.errors.FleetUnavailableError` from :meth:`send`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import trio
from libp2p.io.exceptions import IOException

from github_p2p.errors import FleetUnavailableError
from github_p2p.p2p.messages import Message
from github_p2p.p2p.wire import FrameDecoder, WireLimits, encode

__all__ = ["MessageChannel"]

_READ_SIZE = 64 * 1024


class MessageChannel:
    """Framed, typed messages over one stream."""

    def __init__(self, stream: Any, limits: WireLimits | None = None) -> None:
        self.stream = stream
        self.limits = limits or WireLimits()
        self._decoder = FrameDecoder(self.limits)
        self._send_lock = trio.Lock()

    async def receive(self) -> Message | None:
        """The next message, or ``None`` when the stream ended.

        Raises :class:`~github_p2p.errors.RemoteProtocolError` for a malformed frame.
        """
        while True:
            message = self._decoder.next_message()
            if message is not None:
                return message
            if self._decoder.closed:
                return None
            try:
                data = await self.stream.read(_READ_SIZE)
            except (IOException, EOFError):
                data = b""
            self._decoder.receive_data(bytes(data))

    async def send(self, message: Message) -> None:
        """Encode and write ``message``; concurrent senders take turns."""
        frame = encode(message, self.limits)
        async with self._send_lock:
            try:
                await self.stream.write(frame)
            except (IOException, EOFError) as exc:
                raise FleetUnavailableError("the fleet stream closed while sending") from exc

    async def close(self) -> None:
        """Close the stream, resetting it if a clean close fails."""
        try:
            await self.stream.close()
        except Exception:  # closing a dead stream fails in many ways
            with contextlib.suppress(Exception):
                await self.stream.reset()
