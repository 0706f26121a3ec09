"""Messages over a libp2p stream: the codec's I/O edge.

A :class:`MessageChannel` reads bytes from a stream into a :class:`~.wire.FrameDecoder` and
writes encoded messages, one writer at a time. Any libp2p stream failure becomes ``None`` from
:meth:`receive` (the peer is gone: EOF, reset or error are the same to us) or a
:class:`~github_p2p.errors.FleetUnavailableError` from :meth:`send`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from libp2p.io.exceptions import IOException

from github_p2p.errors import FleetUnavailableError
from github_p2p.p2p.messages import Message
from github_p2p.p2p.wire import FrameDecoder, WireLimits, encode

__all__ = ["READ_SIZE", "MessageChannel"]

#: Bytes asked of the stream per read.
READ_SIZE = 64 * 1024


class MessageChannel:
    """Framed, typed messages over one stream."""

    def __init__(self, stream: Any, limits: WireLimits | None = None) -> None:
        self.stream = stream
        self.limits = limits or WireLimits()
        self._decoder = FrameDecoder(self.limits)
        self._send_lock = trio.Lock()
        self._outgoing: list[bytes] = []

    @property
    def pending(self) -> int:
        """Bytes the decoder will hold once the frame it is receiving is complete."""
        return self._decoder.pending

    async def receive(self, before_read: Callable[[int], Awaitable[None]] | None = None
                      ) -> Message | None:
        """The next message, or ``None`` when the stream ended.

        ``before_read(n)``, when given, is awaited before each read from the stream with
        :attr:`pending` (one read adds at most 64 KiB to it): a receiver's chance to budget,
        wait or give up (by raising) before a peer's partial frame grows.

        Raises :class:`~github_p2p.errors.RemoteProtocolError` for a malformed frame.
        """
        while True:
            message = self._decoder.next_message()
            if message is not None:
                return message
            if self._decoder.closed:
                return None
            if before_read is not None:
                await before_read(self._decoder.pending)
            try:
                data = await self.stream.read(READ_SIZE)
            except (IOException, EOFError):
                data = b""
            self._decoder.receive_data(bytes(data))

    async def send(self, message: Message) -> None:
        """Encode and write ``message``; concurrent senders share writes.

        Frames queue up while a write is in flight and go out together in the next one: under
        load one libp2p write (a yamux frame, a Noise encryption, a syscall) carries many small
        messages, which is most of what a message costs; an idle channel writes at once.
        """
        self._outgoing.append(encode(message, self.limits))
        # Let the other tasks this scheduling round woke queue their frames too.
        await trio.lowlevel.checkpoint()
        async with self._send_lock:
            if not self._outgoing:
                return  # an earlier sender's write carried this frame
            data = b"".join(self._outgoing)
            self._outgoing.clear()
            try:
                await self.stream.write(data)
            except (IOException, EOFError) as exc:
                raise FleetUnavailableError("the fleet stream closed while sending") from exc

    async def close(self) -> None:
        """Close the stream, resetting it if a clean close fails."""
        try:
            await self.stream.close()
        except Exception:  # closing a dead stream fails in many ways
            with contextlib.suppress(Exception):
                await self.stream.reset()
