"""Yamux-level defects of py-libp2p 0.8.1 and what :mod:`github_p2p.p2p.host` does about them.

Kept apart from :mod:`.host` (which decides, per :class:`~github_p2p.p2p.host.Workaround`,
whether to apply them): these functions reach into the yamux connection of a stream, and each
changes only the connection or stream it is given.

* :func:`enforce_receive_window`: yamux buffers a DATA frame past the receive window it granted
  (it only logs "peer exceeded receive window"); the connection's buffers then refuse it, which
  closes that stream and drops the data.
* :func:`reset_stream` with ``discard``: a reset stream's unread data and bookkeeping are kept
  until the muxer's sweeper comes by (30 to 90 s); they are dropped at once.
* :func:`buffered_bytes`: what the muxers hold for streams that have not read it yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["buffered_bytes", "enforce_receive_window", "reset_stream"]

logger = logging.getLogger(__name__)


def buffered_bytes(connections: Iterable[Any]) -> int:
    """Bytes held in the receive buffers of the muxers of ``connections``."""
    total = 0
    for conn in connections:
        buffers = getattr(getattr(conn, "muxed_conn", None), "stream_buffers", None)
        if isinstance(buffers, dict):
            total += sum(len(buffer) for buffer in buffers.values())
    return total


async def reset_stream(stream: Any, *, discard: bool) -> None:
    """Reset ``stream``; with ``discard``, also drop what its muxer holds for it. Never
    raises: the stream may be dead already."""
    try:
        await stream.reset()
    except Exception:
        logger.debug("resetting a stream failed", exc_info=True)
    if not discard:
        return
    muxed = getattr(stream, "muxed_stream", None)
    conn = getattr(muxed, "conn", None)
    buffers = getattr(conn, "stream_buffers", None)
    if muxed is None or conn is None or not isinstance(buffers, dict):
        return  # not yamux: nothing of ours to drop
    buffer = buffers.get(getattr(muxed, "stream_id", None))
    if buffer:
        buffer.clear()
    try:
        # What reset() itself calls; with the buffer drained it drops the stream's entry.
        await conn._finalize_stream(muxed, fully_closed=True)
    except Exception:
        logger.debug("dropping a reset stream's bookkeeping failed", exc_info=True)


class _WindowExceededError(Exception):
    """A peer sent more than the receive window it was given."""


class _WindowedBuffer(bytearray):
    """A yamux stream's receive buffer that refuses data past the stream's receive window."""

    def __init__(self, conn: Any, stream_id: int, initial: bytes = b"") -> None:
        super().__init__(initial)
        self._conn = conn
        self._stream_id = stream_id

    def extend(self, data: Any) -> None:
        stream = self._conn.streams.get(self._stream_id)
        # Yamux extends the buffer first and charges the window after: what arrives may not
        # exceed what is left of it.
        if stream is not None and len(data) > max(int(stream.recv_window), 0):
            raise _WindowExceededError(
                f"peer sent {len(data)} bytes on stream {self._stream_id} with "
                f"{stream.recv_window} left in its receive window")
        super().extend(data)


class _WindowedBuffers(dict[int, bytearray]):
    """The ``stream_buffers`` of one yamux connection, each buffer a :class:`_WindowedBuffer`."""

    def __init__(self, conn: Any, existing: dict[int, bytearray]) -> None:
        super().__init__()
        self._conn = conn
        # The stream being served was opened (and its buffer made) before we were called.
        # Yamux looks its buffers up each time and never keeps one across an await, so they
        # can be swapped here.
        for stream_id, buffer in existing.items():
            self[stream_id] = buffer

    def __setitem__(self, stream_id: int, buffer: bytearray) -> None:
        if not isinstance(buffer, _WindowedBuffer):
            buffer = _WindowedBuffer(self._conn, stream_id, bytes(buffer))
        super().__setitem__(stream_id, buffer)


def enforce_receive_window(stream: Any) -> None:
    """Make the yamux connection of ``stream`` refuse data past a stream's receive window
    (once per connection; other muxers are left alone)."""
    # Per connection, once: the connection of a stream we serve (yamux only).
    conn = getattr(stream, "muxed_conn", None)
    buffers = getattr(conn, "stream_buffers", None)
    if isinstance(buffers, dict) and not isinstance(buffers, _WindowedBuffers) \
            and hasattr(conn, "streams"):
        conn.stream_buffers = _WindowedBuffers(conn, buffers)  # type: ignore[union-attr]


