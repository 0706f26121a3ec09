"""A hostile fleet member, for the hub's exhaustion tests and benchmarks.

It holds the network key, so it gets past the PSK and Noise and speaks the protocol, and it
spreads its streams over several identities (``per_identity`` each: the hub's per-peer bound),
as a careful attacker would. Its moves, each a coroutine run on one stream:

* :func:`non_reader`: ask for a large entry again and again and never read a reply;
* :func:`stalled_writer`: announce a large frame, send all of it but the last bytes, stall;
* :func:`hold_lease` and :func:`wait_for_fills`: hold a fill lease nobody fills, then ask to
  wait for it many times.

:class:`MemorySampler` follows a process's resident memory (and kills it past a bound, so that a
hub without limits fails a test rather than the machine).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import HostSettings, RunningHost, dial, reset_stream, running_host
from github_p2p.p2p.messages import Get, Lease, LeaseReply, Ok, Put
from github_p2p.p2p.wire import PROTOCOL_ID, encode
from github_p2p.testing.procstat import rss_mb

__all__ = [
    "MemorySampler",
    "attack",
    "hold_lease",
    "non_reader",
    "open_channel",
    "put_envelope",
    "stalled_writer",
    "wait_for_fills",
]

StreamMove = Callable[[MessageChannel], Awaitable[None]]


class MemorySampler:
    """Samples ``pid``'s RSS every 50 ms from a thread; calls ``kill`` past ``kill_at_mb`` of
    growth over the first sample."""

    def __init__(self, pid: int, kill: Callable[[], None], kill_at_mb: float = 1500) -> None:
        self.pid = pid
        self.baseline = rss_mb(pid)
        self.peak = self.baseline
        self.killed = False
        self._kill = kill
        self._kill_at = kill_at_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = rss_mb(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, now)
            if now - self.baseline > self._kill_at:
                self.killed = True
                self._kill()
                return
            time.sleep(0.05)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def growth(self) -> float:
        """Peak growth over the baseline, MiB."""
        return self.peak - self.baseline


async def open_channel(me: RunningHost, multiaddr: str) -> MessageChannel:
    """A protocol stream from ``me`` to the hub at ``multiaddr``."""
    peer_id = await dial(me, multiaddr, 20)
    with trio.fail_after(20):
        stream = await me.host.new_stream(ID.from_base58(peer_id), [TProtocol(PROTOCOL_ID)])
    return MessageChannel(stream)


async def put_envelope(multiaddr: str, psk: bytes, entry: bytes, size: int) -> None:
    """Put ``size`` random bytes under ``entry`` (what the attack will ask for)."""
    async with running_host(HostSettings(psk=psk)) as me:
        channel = await open_channel(me, multiaddr)
        await channel.send(Put(1, entry, os.urandom(size), 3600, 3600))
        with trio.fail_after(60):
            if not isinstance(await channel.receive(), Ok):
                raise RuntimeError("the hub refused the put")
        await channel.close()


async def attack(multiaddr: str, psk: bytes, streams: int, move: StreamMove,
                 meanwhile: Callable[[], Any], *, per_identity: int = 8) -> Any:
    """Open ``streams`` streams over enough identities, run ``move`` on each (it may stall for
    ever; a stream the hub resets just ends), run ``meanwhile`` in a thread, then leave: every
    stream is reset and every identity closed. Returns what ``meanwhile`` returned."""
    async with AsyncExitStack() as stack:
        hosts = [await stack.enter_async_context(running_host(HostSettings(psk=psk)))
                 for _ in range(-(-streams // per_identity))]
        channels = [await open_channel(hosts[n // per_identity], multiaddr)
                    for n in range(streams)]

        async def one(channel: MessageChannel) -> None:
            try:
                await move(channel)
            except Exception:  # the hub reset this stream: the attack goes on elsewhere
                await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            for channel in channels:
                nursery.start_soon(one, channel)
            result = await trio.to_thread.run_sync(meanwhile)
            nursery.cancel_scope.cancel()
        # A host's close alone may linger on pending writes: the streams go first.
        for channel in channels:
            with trio.move_on_after(2):
                await reset_stream(hosts[0], channel.stream)
        return result


def non_reader(entry: bytes, requests: int = 80) -> StreamMove:
    """Ask for ``entry`` ``requests`` times (gets and lease hits alike), never read."""
    async def move(channel: MessageChannel) -> None:
        await channel.stream.write(b"".join(
            encode(Lease(rid, entry, 0.0)) if rid % 2 else encode(Get(rid, entry))
            for rid in range(requests)))
        await trio.sleep_forever()
    return move


def stalled_writer(size: int) -> StreamMove:
    """Announce a frame of ``size`` bytes, send all but its last 10, stall."""
    prefix = bytearray()
    value = size
    while value >= 0x80:
        prefix.append((value & 0x7F) | 0x80)
        value >>= 7
    prefix.append(value)

    async def move(channel: MessageChannel) -> None:
        with trio.move_on_after(30):
            await channel.stream.write(bytes(prefix) + b"\x01\x03" + os.urandom(size - 12))
        await trio.sleep_forever()
    return move


async def hold_lease(me: RunningHost, multiaddr: str, streams: int = 1
                     ) -> tuple[list[MessageChannel], bytes]:
    """Streams of one identity, the first holding a lease on an id nobody will fill."""
    channels = [await open_channel(me, multiaddr) for _ in range(streams)]
    entry = os.urandom(32)
    with trio.fail_after(30):
        await channels[0].send(Lease(1, entry, 0.0))
        reply = await channels[0].receive()
    if not (isinstance(reply, LeaseReply) and reply.outcome == "granted"):
        raise RuntimeError(f"expected a granted lease, got {reply!r}")
    return channels, entry


async def wait_for_fills(channels: list[MessageChannel], entry: bytes, waits: int) -> None:
    """Ask to wait for ``entry``'s fill ``waits`` times over ``channels``; never read."""
    per_stream = -(-waits // len(channels))
    for index, channel in enumerate(channels):
        await channel.stream.write(b"".join(
            encode(Lease(2 + index * per_stream + n, entry, 60.0)) for n in range(per_stream)))
    await trio.sleep_forever()
