"""Regression pairs of the yamux flow-control workarounds (``github_p2p.p2p.muxer``).

As in ``test_host_defects.py``: one test shows the workaround works, and a ``..._defect_...``
test builds the same host with only that workaround off and shows the py-libp2p 0.8.1 defect.

* a peer that ignores the receive window it was given makes a node buffer everything it sends
  for a stream the node is not reading (``ENFORCE_RECEIVE_WINDOW``);
* a reset stream keeps its unread data until the muxer's sweeper comes by, 30 to 90 s later
  (``DISCARD_ON_RESET``);
* every read is answered with a WINDOW_UPDATE frame (``BATCH_WINDOW_UPDATES``).
"""

from __future__ import annotations

import os

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol

from github_p2p.p2p.host import (
    ALL_WORKAROUNDS,
    RELEASE_ON_READ,
    HostSettings,
    Workaround,
    dial,
    muxer_buffered_bytes,
    reset_stream,
    running_host,
    set_safe_stream_handler,
)

SINK = TProtocol("/test/sink/1.0.0")
MiB = 1024 * 1024


def without(workaround: Workaround) -> frozenset[Workaround]:
    return ALL_WORKAROUNDS - {workaround}


async def flood_ignoring_the_window(workarounds: frozenset[Workaround]) -> int:
    """A client sends 32 MiB on a stream the server reads once; what the server holds."""
    async with running_host(HostSettings(workarounds=workarounds)) as server, \
            running_host(HostSettings()) as client:
        first_read = trio.Event()

        async def handler(stream: INetStream) -> None:
            await stream.read(1024)
            first_read.set()
            await trio.sleep_forever()  # never reads again

        set_safe_stream_handler(server, SINK, handler)
        await dial(client, server.multiaddrs[0], 10)
        stream = await client.host.new_stream(server.host.get_id(), [SINK])
        await stream.write(b"x" * 1024)
        with trio.fail_after(10):
            await first_read.wait()
        muxed = stream.muxed_stream  # type: ignore[attr-defined]
        with trio.move_on_after(10):
            for _ in range(8):
                # A hostile sender: it behaves as if every window were wide open.
                muxed.send_window = 64 * MiB
                await stream.write(os.urandom(4 * MiB))
        await trio.sleep(0.5)  # let the last frames arrive
        return muxer_buffered_bytes(server)


async def test_data_past_the_receive_window_is_refused() -> None:
    held = await flood_ignoring_the_window(ALL_WORKAROUNDS)
    assert held <= 16 * MiB, held  # at most one autotuned window, not what was sent


async def test_receive_window_defect_a_peer_can_make_a_node_hold_anything() -> None:
    held = await flood_ignoring_the_window(without(Workaround.ENFORCE_RECEIVE_WINDOW))
    assert held >= 24 * MiB, held


async def unread_after_reset(server_settings: HostSettings) -> tuple[int, int]:
    """The server resets a stream holding unread data: bytes held before and after."""
    async with running_host(server_settings) as server, running_host(HostSettings()) as client:
        held: list[int] = []
        done = trio.Event()

        async def handler(stream: INetStream) -> None:
            await stream.read(1024)
            await trio.sleep(1)  # the client's data piles up in the muxer meanwhile
            held.append(muxer_buffered_bytes(server))
            await reset_stream(server, stream)
            held.append(muxer_buffered_bytes(server))
            done.set()

        set_safe_stream_handler(server, SINK, handler)
        await dial(client, server.multiaddrs[0], 10)
        stream = await client.host.new_stream(server.host.get_id(), [SINK])
        await stream.write(b"x" * 1024)
        async with trio.open_nursery() as nursery:
            async def write() -> None:
                with trio.move_on_after(5):
                    await stream.write(os.urandom(2 * MiB))

            nursery.start_soon(write)
            with trio.fail_after(20):
                await done.wait()
            nursery.cancel_scope.cancel()
        return held[0], held[1]


async def test_a_reset_stream_gives_its_unread_data_back_at_once() -> None:
    before, after = await unread_after_reset(HostSettings())
    assert before >= 256 * 1024 and after == 0, (before, after)


async def test_reset_defect_unread_data_outlives_the_stream() -> None:
    before, after = await unread_after_reset(
        HostSettings(workarounds=without(Workaround.DISCARD_ON_RESET)))
    assert before >= 256 * 1024 and after == before, (before, after)


def test_every_workaround_is_on_by_default() -> None:
    assert {Workaround.ENFORCE_RECEIVE_WINDOW, Workaround.DISCARD_ON_RESET} <= ALL_WORKAROUNDS


ECHO = TProtocol("/test/echo/1.0.0")


async def window_updates_per_read(settings: HostSettings, exchanges: int = 40) -> float:
    """Small request/response exchanges on one stream; the WINDOW_UPDATE frames the server
    sent for what it read, per read (py-libp2p counts them on the stream)."""
    async with running_host(settings) as server, running_host(HostSettings()) as client:
        served: list[INetStream] = []

        async def handler(stream: INetStream) -> None:
            served.append(stream)
            while True:
                data = await stream.read(1024)
                if not data:
                    return
                await stream.write(data)

        set_safe_stream_handler(server, ECHO, handler)
        await dial(client, server.multiaddrs[0], 10)
        stream = await client.host.new_stream(server.host.get_id(), [ECHO])
        with trio.fail_after(20):
            for i in range(exchanges):
                await stream.write(b"%04d" % i)
                assert await stream.read(1024) == b"%04d" % i
        muxed = served[0].muxed_stream  # type: ignore[attr-defined]
        return int(muxed._window_update_bytes_read_only) / exchanges


async def test_window_updates_are_batched(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(RELEASE_ON_READ, raising=False)
    assert await window_updates_per_read(HostSettings()) == 0
    assert os.environ[RELEASE_ON_READ] == "0"


async def test_window_update_defect_one_frame_back_for_every_read(  # type: ignore[no-untyped-def]
        monkeypatch) -> None:
    monkeypatch.setenv(RELEASE_ON_READ, "1")  # py-libp2p's default
    settings = HostSettings(workarounds=without(Workaround.BATCH_WINDOW_UPDATES))
    assert await window_updates_per_read(settings) > 0.5  # nearly every read
