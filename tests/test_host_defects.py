"""Regression tests of the py-libp2p 0.8.1 workarounds in github_p2p.p2p.host.

Each workaround has a pair: one test shows it works, and a ``..._defect_...`` test builds the same
host with only that workaround turned off and shows the defect, so a libp2p upgrade that fixes (or
changes) a defect shows up here as a failing "defect" test.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.abc import INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamError
from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStoreError

from github_p2p.errors import FleetUnavailableError
from github_p2p.p2p.host import (
    ALL_WORKAROUNDS,
    HostSettings,
    RunningHost,
    Workaround,
    dial,
    running_host,
    set_safe_stream_handler,
)

ECHO = TProtocol("/test/echo/1.0.0")
BOOM = TProtocol("/test/boom/1.0.0")


def without(workaround: Workaround) -> frozenset[Workaround]:
    return ALL_WORKAROUNDS - {workaround}


async def echo_handler(stream: INetStream) -> None:
    data = await stream.read(64)
    await stream.write(data)
    await stream.close()


async def boom_handler(stream: INetStream) -> None:
    await stream.read(4)
    raise RuntimeError("handler bug")


async def echo(client: RunningHost, server: RunningHost, payload: bytes = b"ping") -> bytes:
    with trio.fail_after(5):
        stream = await client.host.new_stream(server.host.get_id(), [ECHO])
        await stream.write(payload)
        reply: bytes = await stream.read(64)
        await stream.close()
        return reply


def fake_peer_id() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


# --- inbound connection limiter -----------------------------------------------------------

#: The swarm's lifetime inbound cap with our ConnectionConfig: max_connections - min_connections.
INBOUND_CAP = HostSettings().max_connections
WORKERS = 20


async def connect_cycles(hub: RunningHost, cycles: int) -> tuple[int, int]:
    """Run ``cycles`` connect/disconnect cycles against ``hub``; return (successes, failures).

    Each of WORKERS peers connects and disconnects sequentially; they run side by side only
    because a disconnect spends 200 ms sleeping inside libp2p. At most WORKERS connections are
    ever open at once, far below any concurrent limit: what runs out is the lifetime count.
    """
    outcomes = {"ok": 0, "failed": 0}
    remaining = iter(range(cycles))

    async def worker() -> None:
        async with running_host() as peer:
            for _ in remaining:
                try:
                    await dial(peer, hub.multiaddrs[0], 5)
                except FleetUnavailableError:
                    outcomes["failed"] += 1
                    continue
                outcomes["ok"] += 1
                await peer.host.disconnect(hub.host.get_id())

    async with trio.open_nursery() as nursery:
        for _ in range(WORKERS):
            nursery.start_soon(worker)
    return outcomes["ok"], outcomes["failed"]


async def test_hub_accepts_more_connections_than_the_inbound_cap() -> None:
    async with running_host() as hub, running_host() as last:
        set_safe_stream_handler(hub, ECHO, echo_handler)
        ok, failed = await connect_cycles(hub, INBOUND_CAP + 10)
        assert (ok, failed) == (INBOUND_CAP + 10, 0)
        await dial(last, hub.multiaddrs[0], 5)
        assert await echo(last, hub) == b"ping"


async def test_inbound_cap_defect_hub_refuses_after_cap_lifetime_connections() -> None:
    # Reclaiming the handler tasks of closed connections gives their slots back too, so both
    # workarounds must be off for the defect to show.
    defect = ALL_WORKAROUNDS - {Workaround.UNLIMITED_INBOUND, Workaround.RECLAIM_INBOUND_TASKS}
    async with running_host(HostSettings(workarounds=defect)) as hub:
        ok, failed = await connect_cycles(hub, INBOUND_CAP + 10)
        assert (ok, failed) == (INBOUND_CAP, 10)
        assert hub.host.get_network().get_connections() == []  # nobody is even connected


# --- peerstore size limit -----------------------------------------------------------------


def flood_peerstore(hub: RunningHost, count: int = 1001) -> None:
    """Record ``count`` peers with addresses, as identify does for each peer that connects."""
    peerstore = hub.host.get_peerstore()
    for i in range(count):
        addr = multiaddr.Multiaddr(f"/ip4/10.{i // 65536}.{i // 256 % 256}.{i % 256}/tcp/9000")
        peerstore.add_addrs(fake_peer_id(), [addr], 7200)


async def test_host_survives_more_than_1000_known_peers() -> None:
    async with running_host() as hub, running_host() as peer:
        set_safe_stream_handler(hub, ECHO, echo_handler)
        flood_peerstore(hub)
        assert hub.host.get_peerstore().has_peer(hub.host.get_id())
        await dial(peer, hub.multiaddrs[0], 5)
        assert await echo(peer, hub) == b"ping"
        await trio.sleep(0.5)  # identify both ways has run by now
        assert await echo(peer, hub) == b"ping"


async def test_peerstore_defect_1000_peers_evict_own_entry_and_crash_the_host() -> None:
    settings = HostSettings(workarounds=without(Workaround.LARGE_PEERSTORE))
    with pytest.raises(PeerStoreError, match="peer ID not found"):
        async with running_host(settings) as hub, running_host() as peer:
            flood_peerstore(hub)
            assert not hub.host.get_peerstore().has_peer(hub.host.get_id())
            await dial(peer, hub.multiaddrs[0], 5)
            with trio.fail_after(5):
                await trio.sleep_forever()  # identify arrives; the hub crashes


async def test_peerstore_cleanup_task_drops_expired_peers() -> None:
    async with running_host(HostSettings(peerstore_cleanup_interval=1)) as node:
        peerstore = node.host.get_peerstore()
        gone = fake_peer_id()
        peerstore.add_addrs(gone, [multiaddr.Multiaddr("/ip4/10.0.0.1/tcp/9000")], 1)
        with trio.fail_after(5):
            while peerstore.has_peer(gone):
                await trio.sleep(0.2)
        assert peerstore.has_peer(node.host.get_id())


# --- exceptions in stream handlers --------------------------------------------------------


async def test_failing_handler_resets_only_its_stream(caplog: pytest.LogCaptureFixture) -> None:
    async with running_host() as hub, running_host() as peer:
        set_safe_stream_handler(hub, BOOM, boom_handler)
        set_safe_stream_handler(hub, ECHO, echo_handler)
        await dial(peer, hub.multiaddrs[0], 5)
        with caplog.at_level(logging.ERROR, logger="github_p2p.p2p.host"):
            stream = await peer.host.new_stream(hub.host.get_id(), [BOOM])
            await stream.write(b"boom")
            with trio.fail_after(5):
                try:
                    reply = await stream.read(4)
                except StreamError:  # 0.8.1 reports the reset as StreamEOF
                    reply = b""
            assert reply == b""
        assert await echo(peer, hub) == b"ping"  # same connection, same host: still serving
        assert any("handler bug" in (r.exc_text or "") for r in caplog.records)


async def test_handler_defect_an_exception_crashes_the_host() -> None:
    settings = HostSettings(workarounds=without(Workaround.SAFE_HANDLERS))
    with pytest.raises(RuntimeError, match="handler bug"):
        async with running_host(settings) as hub, running_host() as peer:
            set_safe_stream_handler(hub, BOOM, boom_handler)
            await dial(peer, hub.multiaddrs[0], 5)
            stream = await peer.host.new_stream(hub.host.get_id(), [BOOM])
            await stream.write(b"boom")
            with trio.fail_after(5):
                await trio.sleep_forever()


# --- negative dial cache ------------------------------------------------------------------


async def restart_after_failed_dial(tmp_path: Path, dialer: HostSettings) -> float:
    """Dial a hub that is down, bring it back (same identity and port), dial again.

    Returns how long the second dial took; raises what it raised.
    """
    hub_settings = HostSettings(identity_file=str(tmp_path / "hub.key"))
    async with running_host(hub_settings) as hub:
        address, port = hub.multiaddrs[0], hub.listen_port
    async with running_host(dialer) as peer:
        with pytest.raises(FleetUnavailableError):
            await dial(peer, address, 5)
        restarted = HostSettings(identity_file=hub_settings.identity_file, port=port)
        async with running_host(restarted) as hub:
            assert hub.multiaddrs[0] == address
            started = time.monotonic()
            await dial(peer, address, 5)
            return time.monotonic() - started


async def test_dial_reaches_a_restarted_hub_at_once(tmp_path: Path) -> None:
    assert await restart_after_failed_dial(tmp_path, HostSettings()) < 1.0


async def test_negative_cache_defect_restarted_hub_stays_blocked(tmp_path: Path) -> None:
    dialer = HostSettings(workarounds=without(Workaround.FORGET_FAILED_DIAL))
    with pytest.raises(FleetUnavailableError, match="negative cache"):
        await restart_after_failed_dial(tmp_path, dialer)


# --- a hub that moved -----------------------------------------------------------------------


async def dial_hub_that_moved(tmp_path: Path, dialer: HostSettings) -> None:
    """Know a hub at one port, then dial it (same identity) at another."""
    identity = str(tmp_path / "moving-hub.key")
    async with running_host(dialer) as peer:
        async with running_host(HostSettings(identity_file=identity)) as hub:
            await dial(peer, hub.multiaddrs[0], 5)
        with trio.fail_after(2):
            while peer.host.get_network().get_connections(hub.host.get_id()):
                await trio.sleep(0.01)
        async with running_host(HostSettings(identity_file=identity)) as moved:
            assert moved.listen_port != hub.listen_port
            await dial(peer, moved.multiaddrs[0], 3)


async def test_dial_finds_a_hub_at_its_new_address(tmp_path: Path) -> None:
    await dial_hub_that_moved(tmp_path, HostSettings())


async def test_stale_address_defect_old_address_hides_the_new_one(tmp_path: Path) -> None:
    with pytest.raises(FleetUnavailableError):
        await dial_hub_that_moved(
            tmp_path, HostSettings(workarounds=without(Workaround.FORGET_STALE_ADDRS)))


# --- closed connections left in the swarm's table -----------------------------------------


async def dial_just_after_hub_left(dialer: HostSettings) -> None:
    """Dial a hub that just went away, while its closed connection is still listed."""
    async with running_host(dialer) as peer:
        async with running_host() as hub:
            address, hub_id = hub.multiaddrs[0], hub.host.get_id()
            await dial(peer, address, 5)
        swarm = peer.host.get_network()
        with trio.fail_after(2):
            while not all(conn.is_closed for conn in swarm.get_connections(hub_id)):
                await trio.sleep(0.002)
        assert swarm.get_connections(hub_id), "closed connection already gone: no window to test"
        await dial(peer, address, 5)


async def test_dial_does_not_trust_a_closed_connection() -> None:
    with pytest.raises(FleetUnavailableError):  # the hub is down, and dial says so
        await dial_just_after_hub_left(HostSettings())


async def test_closed_connection_defect_dial_reports_a_dead_hub_as_connected() -> None:
    await dial_just_after_hub_left(
        HostSettings(workarounds=without(Workaround.DROP_CLOSED_CONNECTIONS))
    )


# --- closing ------------------------------------------------------------------------------


def own_listening_sockets() -> int:
    """TCP sockets of this process in LISTEN state (Linux /proc, no psutil)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory's own fd, or one closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                count += fields[3] == "0A" and fields[9] in inodes
    return count


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def start_stop_cycles(settings: HostSettings, cycles: int) -> list[RunningHost]:
    """Start, connect and leave a hub and a peer ``cycles`` times; return the hosts used."""
    used = []
    for _ in range(cycles):
        async with running_host(settings) as hub, running_host(settings) as peer:
            await dial(peer, hub.multiaddrs[0], 5)
            used += [hub, peer]
    gc.collect()  # closed trio sockets in reference cycles are freed here
    await trio.sleep(0.2)
    return used


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")


@needs_proc
async def test_running_host_closes_every_socket() -> None:
    listening, fds = own_listening_sockets(), open_fds()
    await start_stop_cycles(HostSettings(), 4)
    assert own_listening_sockets() == listening
    assert open_fds() <= fds + 1


@needs_proc
async def test_running_host_closes_on_error_and_cancel() -> None:
    listening = own_listening_sockets()
    with pytest.raises(ZeroDivisionError):
        async with running_host():
            1 / 0  # noqa: B018
    with trio.move_on_after(0.2):
        async with running_host():
            await trio.sleep_forever()
    gc.collect()
    assert own_listening_sockets() == listening


@needs_proc
async def test_close_defect_leaving_run_leaks_sockets() -> None:
    listening, fds = own_listening_sockets(), open_fds()
    leaked = await start_stop_cycles(HostSettings(workarounds=without(Workaround.CLOSE_ON_EXIT)), 4)
    assert own_listening_sockets() == listening + 8  # two listeners per cycle, never closed
    assert open_fds() >= fds + 8
    for node in leaked:  # what running_host does; keeps the rest of the session clean
        await node.host.close()
    gc.collect()
    assert own_listening_sockets() == listening


# --- auto-connector -----------------------------------------------------------------------


async def hub_dials_known_peer(settings: HostSettings) -> bool:
    """Whether ``hub`` dials a peer it only knows from its peerstore after a disconnect."""
    async with running_host(settings) as hub, running_host() as known, running_host() as leaver:
        addr = multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{known.listen_port}")
        hub.host.get_peerstore().add_addrs(known.host.get_id(), [addr], 7200)
        await dial(leaver, hub.multiaddrs[0], 5)
        await leaver.host.disconnect(hub.host.get_id())  # triggers the auto-connector
        with trio.move_on_after(1):
            while not known.host.get_network().get_connections(hub.host.get_id()):
                await trio.sleep(0.05)
            return True
        return False


async def test_hub_never_dials_on_its_own() -> None:
    assert not await hub_dials_known_peer(HostSettings())


async def test_auto_connect_defect_hub_dials_peers_it_knows() -> None:
    assert await hub_dials_known_peer(HostSettings(workarounds=without(Workaround.NO_AUTO_CONNECT)))
