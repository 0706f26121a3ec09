"""Real hosts on 127.0.0.1: security, private network, dial behaviour, listening, lifecycle."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from github_p2p.errors import ConfigError, FleetUnavailableError
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
LOOPBACK = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
PSK_A = bytes(range(32))
PSK_B = bytes(range(1, 33))


async def echo_handler(stream: INetStream) -> None:
    data = await stream.read(64)
    await stream.write(data)
    await stream.close()


async def echo(client: RunningHost, server: RunningHost, payload: bytes = b"ping") -> bytes:
    with trio.fail_after(5):
        stream = await client.host.new_stream(server.host.get_id(), [ECHO])
        await stream.write(payload)
        reply: bytes = await stream.read(64)
        await stream.close()
        return reply


@asynccontextmanager
async def raw_libp2p_host(**kwargs: Any) -> AsyncIterator[IHost]:
    """A host built straight with ``new_host`` (no hardening), for the "without" side."""
    kwargs.setdefault(
        "connection_config",
        ConnectionConfig(max_connections_per_peer=1, min_connections=0, low_watermark=0),
    )
    host = new_host(**kwargs)
    try:
        async with host.run([LOOPBACK]):
            yield host
    finally:
        with trio.CancelScope(shield=True):
            await host.close()


# --- listening and addresses ------------------------------------------------------------


async def test_running_host_describes_itself() -> None:
    async with running_host() as node:
        assert node.listen_port > 0
        assert node.multiaddrs == [f"/ip4/127.0.0.1/tcp/{node.listen_port}/p2p/{node.peer_id}"]
        assert node.peer_id == str(node.host.get_id())


async def test_wildcard_listen_announces_public_host_then_loopback() -> None:
    settings = HostSettings(listen_host="0.0.0.0", announce_host="hub.example.org")
    async with running_host(settings) as hub, running_host() as peer:
        port, pid = hub.listen_port, hub.peer_id
        assert hub.multiaddrs == [
            f"/dns/hub.example.org/tcp/{port}/p2p/{pid}",
            f"/ip4/127.0.0.1/tcp/{port}/p2p/{pid}",
        ]
        assert await dial(peer, hub.multiaddrs[1], 5) == pid


async def test_busy_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1 port {port}"):
            async with running_host(HostSettings(port=port)):
                pytest.fail("the body must not run without a listener")


async def test_busy_port_defect_libp2p_runs_without_listening() -> None:
    # Why running_host checks: host.run() swallows the listen error and runs deaf.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        host = new_host()
        try:
            async with host.run([multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")]):
                assert host.get_transport_addrs() == []
        finally:
            await host.close()


async def test_body_exception_comes_out_unwrapped() -> None:
    cause = KeyError("cause")
    with pytest.raises(LookupError) as info:
        async with running_host():
            try:
                raise cause
            except KeyError as exc:
                raise LookupError("from the body") from exc
    assert info.value.__cause__ is cause


# --- security ---------------------------------------------------------------------------


async def test_connection_is_noise_and_yamux() -> None:
    async with running_host() as hub, running_host() as peer:
        set_safe_stream_handler(hub, ECHO, echo_handler)
        await dial(peer, hub.multiaddrs[0], 5)
        assert await echo(peer, hub) == b"ping"
        (conn,) = peer.host.get_network().get_connections(hub.host.get_id())
        assert isinstance(conn.muxed_conn, Yamux)
        session: Any = conn.muxed_conn.secured_conn
        assert type(session.conn).__name__ == "NoiseTransportReadWriter"
        network: Any = hub.host.get_network()
        upgrader = network.upgrader
        assert list(upgrader.security_multistream.transports) == [NOISE_PROTOCOL_ID]
        assert list(upgrader.muxer_multistream.transports) == [YAMUX_PROTOCOL_ID]


async def test_plaintext_dialer_is_refused() -> None:
    key_pair = create_new_key_pair()
    plaintext = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)}
    async with (
        running_host() as hub,
        raw_libp2p_host(key_pair=key_pair, sec_opt=plaintext) as intruder,
    ):
        with pytest.raises(Exception), trio.fail_after(10):  # noqa: B017 - any refusal will do
            await intruder.connect(info_from_p2p_addr(multiaddr.Multiaddr(hub.multiaddrs[0])))
        assert hub.host.get_network().get_connections() == []


async def test_plaintext_defect_default_libp2p_host_accepts_plaintext() -> None:
    # Why sec_opt is Noise only: new_host's defaults let a plaintext peer in.
    key_pair = create_new_key_pair()
    plaintext = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)}
    async with (
        raw_libp2p_host() as open_host,
        raw_libp2p_host(key_pair=key_pair, sec_opt=plaintext) as intruder,
    ):
        with trio.fail_after(10):
            await intruder.connect(info_from_p2p_addr(open_host.get_addrs()[0]))
        assert open_host.get_network().get_connections(intruder.get_id())


# --- private network --------------------------------------------------------------------


async def test_same_network_key_connects() -> None:
    async with (
        running_host(HostSettings(psk=PSK_A)) as hub,
        running_host(HostSettings(psk=PSK_A)) as peer,
    ):
        set_safe_stream_handler(hub, ECHO, echo_handler)
        assert await dial(peer, hub.multiaddrs[0], 5) == hub.peer_id
        assert await echo(peer, hub) == b"ping"


@pytest.mark.parametrize("peer_psk", [PSK_B, None], ids=["other-key", "no-key"])
async def test_other_network_key_times_out_cleanly(peer_psk: bytes | None) -> None:
    async with (
        running_host(HostSettings(psk=PSK_A)) as hub,
        running_host(HostSettings(psk=peer_psk)) as peer,
    ):
        started = time.monotonic()
        with pytest.raises(FleetUnavailableError):
            await dial(peer, hub.multiaddrs[0], 1.0)
        assert time.monotonic() - started < 2.0
        assert peer.host.get_network().get_connections() == []


# --- dial -------------------------------------------------------------------------------


async def test_dial_rejects_malformed_addresses() -> None:
    async with running_host() as node:
        for bad in ("/ip4/127.0.0.1/tcp/1", "not-an-address", "/ip4/1.2.3.4/tcp/1/p2p/xyz"):
            with pytest.raises(ConfigError, match=repr(bad).replace("/", ".")):
                await dial(node, bad, 1)
        with pytest.raises(ConfigError, match="own address"):
            await dial(node, node.multiaddrs[0], 1)
        with pytest.raises(ValueError):
            await dial(node, node.multiaddrs[0], 0)


async def test_dial_failures_are_fleet_unavailable() -> None:
    async with running_host() as hub, running_host() as peer:
        impostor = f"/ip4/127.0.0.1/tcp/{hub.listen_port}/p2p/{_fresh_peer_id()}"
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = f"/ip4/127.0.0.1/tcp/{closed.getsockname()[1]}/p2p/{_fresh_peer_id()}"
        for address in (impostor, nobody):  # the hub's port, another id / nobody listening
            with pytest.raises(FleetUnavailableError, match="cannot connect"):
                await dial(peer, address, 5)


def _fresh_peer_id() -> str:
    from libp2p import generate_peer_id_from

    return str(generate_peer_id_from(create_new_key_pair()))


async def _connect_times(dialer_settings: HostSettings, rounds: int) -> list[float]:
    times = []
    async with running_host() as hub:
        for _ in range(rounds):
            async with running_host(dialer_settings) as peer:
                started = time.perf_counter()
                await dial(peer, hub.multiaddrs[0], 5)
                times.append(time.perf_counter() - started)
    return times


async def test_fast_dial_connects_without_the_250ms_wait() -> None:
    times = await _connect_times(HostSettings(), 5)
    assert statistics.median(times) < 0.15, times


async def test_fast_dial_defect_default_config_waits_250ms() -> None:
    slow = HostSettings(workarounds=ALL_WORKAROUNDS - {Workaround.FAST_DIAL})
    times = await _connect_times(slow, 3)
    assert min(times) >= 0.25, times
