"""The one place that builds libp2p hosts, and every py-libp2p 0.8.1 workaround we need.

Nothing else in github-p2p calls ``libp2p.new_host``: :func:`running_host` builds a hardened host,
listens, and always closes it. The hardening, each item checked in the 0.8.1 source and covered by a
regression test that fails without it (``tests/test_host*.py``):

* **Security.** ``new_host`` accepts plaintext, secio and TLS by default. We pass Noise as the only
  security transport and yamux as the only muxer, so a plaintext dialer cannot connect.
* **Private network.** ``HostSettings.psk`` (32 bytes) becomes the libp2p PSK. A dialer with
  another key does not fail, it *hangs* (> 20 s): every dial has a deadline (:func:`dial`).
* :attr:`Workaround.FAST_DIAL`: the default ``ConnectionConfig`` (3 connections per peer) makes
  every dial wait the 250 ms happy-eyeballs delay even with a single address. One connection per
  peer (and ``min_connections = low_watermark = 0``) brings a loopback connect from ~250 ms to
  ~10 ms.
* :attr:`Workaround.NO_AUTO_CONNECT`: the swarm's auto-connector aims at
  ``(low_watermark + high_watermark) / 2`` connections, so even with both minimums at 0 it dials
  peers it merely knows from the peerstore, every 30 s and after every disconnect: a hub would
  dial back runners that left (behind NAT, so each dial burns a timeout). We stop the
  auto-connector of the swarm we built; nodes only dial where :func:`dial` is asked to.
* :attr:`Workaround.UNLIMITED_INBOUND`: each inbound connection takes a slot of
  ``swarm._inbound_limiter`` (``max_connections - min_connections`` slots) and its handler task
  keeps it until the swarm stops, so a node refuses every connection after that many over its
  whole life. We lift the limiter's capacity on the swarm we built; live connections stay bounded
  by ``max_connections``, which the swarm checks against its connection table on every upgrade.
* :attr:`Workaround.LARGE_PEERSTORE`: the default ``PeerStore(max_peers=1000)`` evicts entries
  without addresses first, which is the host's own entry (it only holds our keys); the next
  identify then crashes the host with ``PeerStoreError``. We pass a peerstore with large limits
  and run its cleanup task, which drops peers whose address TTL ran out.
* :attr:`Workaround.SAFE_HANDLERS`: an exception escaping a stream handler crashes the swarm (and
  so the host). :func:`set_safe_stream_handler` logs it and resets the stream instead.
* :attr:`Workaround.FORGET_FAILED_DIAL`: a failed dial puts the peer in the swarm's negative
  cache for 60 s, and ``connect``/``new_stream`` refuse it meanwhile, even after the peer came
  back. :func:`dial` forgets that entry (``Swarm.unblock_peer``) before dialling.
* :attr:`Workaround.DROP_CLOSED_CONNECTIONS`: when a peer goes away, its closed connection stays
  in the swarm's table for ~100 ms more; ``connect`` only checks that the table is not empty, so
  it reports success on the dead connection and the next ``new_stream`` fails with "No valid
  connections". :func:`dial` removes closed connections of that peer from the table first.
* :attr:`Workaround.FORGET_STALE_ADDRS`: ``connect`` adds the given address to the peerstore
  but dials only the first address it already knew, so once a hub moved (a new IP or port, the
  same identity) its old address hides the new one forever. :func:`dial` clears the addresses of
  a peer it is not connected to before dialling the one it was given.
* :attr:`Workaround.RECLAIM_INBOUND_TASKS`: the swarm's handler of each inbound connection ends
  in ``await self.manager.wait_finished()`` (a "barrier" until the swarm stops), so the task, its
  frames and the raw connection objects of every connection a node ever accepted stay alive:
  5-10 KB each, ~45 MB after 5,000 short-lived runners. We run each handler of the swarm we
  built in its own cancel scope and a sweeper cancels the scopes whose socket has been closed
  for a whole sweep interval (by then the connection is gone: only the barrier is left).
* :attr:`Workaround.ENFORCE_RECEIVE_WINDOW`: yamux buffers every DATA frame it receives, even
  past the receive window it granted (it logs "peer exceeded receive window" and goes on), so a
  peer that ignores flow control can make a node hold any amount of data for a stream the node
  is not reading. :func:`set_safe_stream_handler` makes each connection it serves refuse such a
  frame: the stream is closed and the data dropped (go-yamux closes the whole session).
* :attr:`Workaround.DISCARD_ON_RESET`: resetting a yamux stream keeps the data it had not read
  yet, and its bookkeeping, until the muxer's sweeper comes by 30 to 90 s later (the sweeper
  only drops drained buffers at once). :func:`reset_stream` drops both at once.
* :attr:`Workaround.BATCH_WINDOW_UPDATES`: yamux answers every read with a WINDOW_UPDATE frame
  (``PY_YAMUX_RELEASE_ON_READ`` defaults to on), so each small message costs a second frame, a
  second Noise and PSK encryption and a second syscall on the way back: a request/response
  exchange moves four frames instead of two. With the variable off, updates are batched as
  go-yamux does (once half the window is used). py-libp2p reads it from the environment of
  the process on every read, so :func:`running_host` sets it for the process unless the user
  already did.
* :attr:`Workaround.CLOSE_ON_EXIT`: leaving ``host.run()`` does not close the listeners and
  connections; only ``host.close()`` does. :func:`running_host` always awaits it, shielded and
  bounded, even on error or cancellation.
* ``host.run()`` ignores a failed listen (port in use): the host runs without listening at all.
  :func:`running_host` checks and raises :class:`~github_p2p.errors.ConfigError`.

What callers must still do themselves is in the package's docstring (:mod:`github_p2p.p2p`).
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.swarm import Swarm
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.peer.peerstore import PeerStore
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from github_p2p.errors import ConfigError, FleetUnavailableError
from github_p2p.p2p import muxer
from github_p2p.p2p.addresses import is_host, parse_bootstrap_peers, tcp_multiaddr
from github_p2p.p2p.identity import load_or_create_identity
from github_p2p.p2p.inbound import InboundHandlers

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "ALL_WORKAROUNDS",
    "HostSettings",
    "RunningHost",
    "StreamHandler",
    "Workaround",
    "dial",
    "load_or_create_identity",
    "muxer_buffered_bytes",
    "parse_bootstrap_peers",
    "reset_stream",
    "running_host",
    "set_safe_stream_handler",
]

logger = logging.getLogger(__name__)

#: A libp2p stream handler.
StreamHandler = Callable[[INetStream], Awaitable[None]]

_PSK_LENGTH = 32
#: py-libp2p's switch for a WINDOW_UPDATE after every read (see the module docstring).
RELEASE_ON_READ = "PY_YAMUX_RELEASE_ON_READ"
#: How long resetting a failed handler's stream may take before we give up on it.
_RESET_TIMEOUT = 1.0


class Workaround(enum.Enum):
    """A py-libp2p 0.8.1 defect that :func:`running_host` works around (see the module docstring).

    All are on by default. Turning one off exists for the regression tests, which show each
    defect with its workaround disabled.
    """

    FAST_DIAL = "fast-dial"
    NO_AUTO_CONNECT = "no-auto-connect"
    UNLIMITED_INBOUND = "unlimited-inbound"
    LARGE_PEERSTORE = "large-peerstore"
    SAFE_HANDLERS = "safe-handlers"
    FORGET_FAILED_DIAL = "forget-failed-dial"
    DROP_CLOSED_CONNECTIONS = "drop-closed-connections"
    FORGET_STALE_ADDRS = "forget-stale-addrs"
    CLOSE_ON_EXIT = "close-on-exit"
    RECLAIM_INBOUND_TASKS = "reclaim-inbound-tasks"
    ENFORCE_RECEIVE_WINDOW = "enforce-receive-window"
    DISCARD_ON_RESET = "discard-on-reset"
    BATCH_WINDOW_UPDATES = "batch-window-updates"


ALL_WORKAROUNDS: frozenset[Workaround] = frozenset(Workaround)


@dataclass(frozen=True)
class HostSettings:
    """How to build and run one libp2p host; validated on construction (``ConfigError``)."""

    #: IP literal to listen on: ``127.0.0.1`` for a runner peer, ``0.0.0.0`` for the hub.
    listen_host: str = "127.0.0.1"
    #: TCP port; 0 picks an ephemeral one (see :attr:`RunningHost.listen_port`).
    port: int = 0
    #: 32-byte private-network key (``github_p2p.keys.derive_network_key``); None = public.
    psk: bytes | None = field(default=None, repr=False)
    #: Persistent Ed25519 identity file (the hub); None = a fresh key for this run.
    identity_file: str | None = None
    #: Public IP or DNS name to advertise first in :attr:`RunningHost.multiaddrs` (hub behind NAT).
    announce_host: str | None = None
    #: Bound on dialling, security and muxer handshakes and protocol negotiation (seconds).
    handshake_timeout: float = 10.0
    #: Bound on ``host.close()`` when leaving :func:`running_host` (seconds).
    close_timeout: float = 5.0
    #: Live connections at once; more are refused during the upgrade.
    max_connections: int = 300
    #: Peerstore size bound; only reached if peers arrive faster than their addresses expire.
    peerstore_max_peers: int = 1_000_000
    #: Seconds between peerstore sweeps of expired peers.
    peerstore_cleanup_interval: int = 60
    #: Seconds between sweeps for the handler tasks of closed inbound connections.
    inbound_sweep_interval: float = 5.0
    #: Defect workarounds to apply; only tests turn any off.
    workarounds: frozenset[Workaround] = ALL_WORKAROUNDS

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.listen_host)
        except ValueError as exc:
            raise ConfigError(
                f"listen host must be an IP address, not {self.listen_host!r}"
            ) from exc
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
        if self.psk is not None and len(self.psk) != _PSK_LENGTH:
            raise ConfigError(f"the network key must be {_PSK_LENGTH} bytes")
        if self.identity_file is not None and not self.identity_file.strip():
            raise ConfigError("the identity file path is empty")
        if self.announce_host is not None and not is_host(self.announce_host):
            raise ConfigError(f"announce host {self.announce_host!r} is not an IP or DNS name")
        for name in ("handshake_timeout", "close_timeout", "inbound_sweep_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        if self.peerstore_max_peers < 1:
            raise ConfigError("peerstore_max_peers must be at least 1")
        if self.peerstore_cleanup_interval < 1:
            raise ConfigError("peerstore_cleanup_interval must be at least 1 second")
        if not all(isinstance(w, Workaround) for w in self.workarounds):
            raise ConfigError("workarounds must be Workaround members")


@dataclass(frozen=True)
class RunningHost:
    """A listening host, as yielded by :func:`running_host`."""

    #: The libp2p host; use it for ``new_stream`` and peer queries.
    host: IHost
    #: Our peer id (base58).
    peer_id: str
    #: Dialable addresses, each ending in ``/p2p/<peer_id>``; the announced one first.
    multiaddrs: list[str]
    #: The TCP port actually bound (useful with ``port=0``).
    listen_port: int
    settings: HostSettings


@asynccontextmanager
async def running_host(settings: HostSettings | None = None) -> AsyncIterator[RunningHost]:
    """Build a hardened host from ``settings``, listen, and yield it; always close it on exit.

    Raises :class:`~github_p2p.errors.ConfigError` for a bad identity file or an address that
    cannot be listened on. An exception raised in the body comes out as itself, not wrapped in
    the exception groups of libp2p's internal nurseries.
    """
    settings = settings if settings is not None else HostSettings()
    if Workaround.BATCH_WINDOW_UPDATES in settings.workarounds:
        os.environ.setdefault(RELEASE_ON_READ, "0")
    peerstore = _peerstore(settings)
    host = _build_host(settings, peerstore)
    inbound: InboundHandlers | None = None
    if Workaround.RECLAIM_INBOUND_TASKS in settings.workarounds:
        inbound = InboundHandlers(_swarm(host))
    try:
        async with host.run([tcp_multiaddr(settings.listen_host, settings.port)]):
            running = _describe(host, settings)
            if Workaround.NO_AUTO_CONNECT in settings.workarounds:
                await _swarm(host).auto_connector.stop()  # per instance, see the module docstring
            async with trio.open_nursery() as nursery:
                if Workaround.LARGE_PEERSTORE in settings.workarounds:
                    nursery.start_soon(
                        peerstore.start_cleanup_task, settings.peerstore_cleanup_interval
                    )
                if inbound is not None:
                    nursery.start_soon(inbound.sweep, settings.inbound_sweep_interval)
                try:
                    yield running
                finally:
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        sole = _sole_exception(group)
        if sole is group:
            raise
        context = sole.__context__
        try:
            raise sole
        finally:
            sole.__context__ = context  # keep the body's context, not our group
    finally:
        if Workaround.CLOSE_ON_EXIT in settings.workarounds:
            await _close(host, settings.close_timeout)


async def dial(running: RunningHost, multiaddr: str, timeout: float) -> str:
    """Connect to the peer at ``multiaddr`` (``.../p2p/<id>``) within ``timeout`` seconds.

    Returns the peer id; returns at once when already connected. Raises
    :class:`~github_p2p.errors.ConfigError` for a malformed address and
    :class:`~github_p2p.errors.FleetUnavailableError` when the peer cannot be reached in time
    (refused, unreachable, another network key, wrong peer id).
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    info = _peer_info(multiaddr)
    if str(info.peer_id) == running.peer_id:
        raise ConfigError(f"{multiaddr} is this node's own address")
    swarm = _swarm(running.host)
    if Workaround.DROP_CLOSED_CONNECTIONS in running.settings.workarounds:
        # connect() would take a dead-but-listed connection for a live one.
        for conn in swarm.get_connections(info.peer_id):
            if isinstance(conn, SwarmConn) and conn.is_closed:
                swarm.remove_conn(conn)
    if (Workaround.FORGET_STALE_ADDRS in running.settings.workarounds
            and not swarm.get_connections(info.peer_id)):
        # Only the first known address is ever dialled: make the given one the only one.
        running.host.get_peerstore().clear_addrs(info.peer_id)
    if Workaround.FORGET_FAILED_DIAL in running.settings.workarounds:
        # A failed dial blocks the peer for 60 s (swarm negative cache), even once it is back.
        swarm.unblock_peer(info.peer_id)
    try:
        with trio.fail_after(timeout):
            await running.host.connect(info)
    except trio.TooSlowError as exc:
        raise FleetUnavailableError(
            f"no connection to {multiaddr} within {timeout:g} s "
            "(unreachable, or a different network key)"
        ) from exc
    except Exception as exc:  # libp2p raises SwarmException trees and bare exception groups
        raise FleetUnavailableError(f"cannot connect to {multiaddr}: {exc}") from exc
    return str(info.peer_id)


def muxer_buffered_bytes(running: RunningHost) -> int:
    """Bytes the stream muxer holds for streams that have not read them yet (all peers)."""
    return muxer.buffered_bytes(_swarm(running.host).get_connections())


def set_safe_stream_handler(running: RunningHost, protocol_id: str, handler: StreamHandler) -> None:
    """Serve ``protocol_id`` with ``handler``; an exception it raises resets only that stream.

    Without this wrapper an exception escaping a handler crashes the whole swarm. The exception
    is logged with its traceback; cancellation still propagates.
    """
    if Workaround.SAFE_HANDLERS not in running.settings.workarounds:
        running.host.set_stream_handler(TProtocol(protocol_id), handler)
        return

    async def safe_handler(stream: INetStream) -> None:
        if Workaround.ENFORCE_RECEIVE_WINDOW in running.settings.workarounds:
            muxer.enforce_receive_window(stream)
        try:
            await handler(stream)
        except Exception:
            logger.exception(
                "handler for %s failed on a stream from %s; resetting the stream",
                protocol_id,
                _remote_peer(stream),
            )
            with trio.move_on_after(_RESET_TIMEOUT) as scope:
                scope.shield = True
                try:
                    await stream.reset()
                except Exception:
                    logger.debug("resetting the failed stream failed too", exc_info=True)

    running.host.set_stream_handler(TProtocol(protocol_id), safe_handler)


async def reset_stream(running: RunningHost, stream: INetStream) -> None:
    """Reset ``stream`` and drop at once what the muxer still holds for it (see
    :attr:`Workaround.DISCARD_ON_RESET`). Never raises: the stream may be dead already."""
    await muxer.reset_stream(
        stream, discard=Workaround.DISCARD_ON_RESET in running.settings.workarounds)


# --- building -------------------------------------------------------------------------------


def _peerstore(settings: HostSettings) -> PeerStore:
    if Workaround.LARGE_PEERSTORE in settings.workarounds:
        # Large enough that the own-entry-first eviction never runs; expiry keeps it small.
        limit = settings.peerstore_max_peers
        return PeerStore(max_records=limit, max_peers=limit)
    return PeerStore()


def _connection_config(settings: HostSettings) -> ConnectionConfig:
    defaults = ConnectionConfig()
    if Workaround.FAST_DIAL in settings.workarounds:
        # One connection per peer lets the dial return as soon as it has one instead of
        # sleeping out the 250 ms happy-eyeballs delay; no watermarks, no redial loop.
        per_peer, minimum, low = 1, 0, 0
    else:
        per_peer = defaults.max_connections_per_peer
        minimum = min(defaults.min_connections, settings.max_connections)
        low = min(defaults.low_watermark, settings.max_connections)
    timeout = settings.handshake_timeout
    return ConnectionConfig(
        max_connections=settings.max_connections,
        high_watermark=settings.max_connections,
        min_connections=minimum,
        low_watermark=low,
        max_connections_per_peer=per_peer,
        dial_timeout=timeout,
        inbound_upgrade_timeout=timeout,
        outbound_upgrade_timeout=timeout,
        inbound_stream_protocol_negotiation_timeout=timeout,
        outbound_stream_protocol_negotiation_timeout=timeout,
    )


def _build_host(settings: HostSettings, peerstore: PeerStore) -> IHost:
    key_pair: KeyPair = (
        load_or_create_identity(settings.identity_file)
        if settings.identity_file is not None
        else create_new_key_pair()
    )
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        # Explicit options replace the defaults, which accept plaintext, secio, TLS and mplex.
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        peerstore_opt=peerstore,
        listen_addrs=[tcp_multiaddr(settings.listen_host, settings.port)],
        negotiate_timeout=max(1, math.ceil(settings.handshake_timeout)),
        psk=settings.psk.hex() if settings.psk is not None else None,
        connection_config=_connection_config(settings),
    )
    if Workaround.UNLIMITED_INBOUND in settings.workarounds:
        # Per-instance: the limiter never gets its slots back while the swarm runs (see the
        # module docstring); max_connections still bounds the live connections.
        _swarm(host)._inbound_limiter.total_tokens = math.inf
    return host


def _describe(host: IHost, settings: HostSettings) -> RunningHost:
    bound = list(host.get_transport_addrs())
    if not bound:
        # host.run() swallows the listener's error (port in use, address not local).
        raise ConfigError(
            f"cannot listen on {settings.listen_host} port {settings.port} "
            "(port in use or address not available)"
        )
    peer_id = str(host.get_id())
    port = int(bound[0].value_for_protocol("tcp"))
    addrs: list[str] = []
    if settings.announce_host is not None:
        addrs.append(f"{tcp_multiaddr(settings.announce_host, port)}/p2p/{peer_id}")
    for addr in bound:
        ip = ipaddress.ip_address(addr.value_for_protocol(addr.protocols()[0].name))
        if ip.is_unspecified:  # bound to every interface: loopback reaches it from here
            ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
        text = f"{tcp_multiaddr(str(ip), port)}/p2p/{peer_id}"
        if text not in addrs:
            addrs.append(text)
    return RunningHost(
        host=host, peer_id=peer_id, multiaddrs=addrs, listen_port=port, settings=settings
    )


async def _close(host: IHost, timeout: float) -> None:
    # Shielded: this runs while the caller is being cancelled too; bounded: never hang exit.
    with trio.move_on_after(timeout) as scope:
        scope.shield = True
        try:
            await host.close()
        except Exception:
            logger.warning("closing the libp2p host failed", exc_info=True)
    if scope.cancelled_caught:
        logger.warning("closing the libp2p host took more than %g s; gave up", timeout)


# --- addresses ------------------------------------------------------------------------------


def _peer_info(multiaddr: str) -> PeerInfo:
    try:
        return info_from_p2p_addr(Multiaddr(multiaddr))
    except Exception as exc:  # multiaddr and libp2p each raise their own ValueError kinds
        raise ConfigError(f"bad peer address {multiaddr!r}: {exc}") from exc


# --- small helpers --------------------------------------------------------------------------


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    # libp2p nests the body's exception in one group per internal nursery; hand back the
    # exception itself when it is the only one, the whole group otherwise.
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if not isinstance(exc, BaseExceptionGroup) else group


def _swarm(host: IHost) -> Swarm:
    network = host.get_network()
    if not isinstance(network, Swarm):  # new_host always builds a Swarm; guard the casts
        raise TypeError(f"expected a libp2p Swarm, got {type(network).__name__}")
    return network


def _remote_peer(stream: INetStream) -> str:
    try:
        return str(stream.muxed_conn.peer_id)
    except AttributeError:
        return "an unknown peer"
