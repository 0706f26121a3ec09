"""A runner's link to one hub: dial, one persistent multiplexed stream, reconnect with backoff.

Requests carry a request id (``rid``), so many can be in flight on the one stream (a persistent
stream costs ~0.7 ms per exchange against ~2.8 ms for a stream per request, NOTES.md). When the
stream dies every pending request fails at once with :class:`FleetUnavailableError`, and the
link dials again with capped exponential backoff, so a restarted hub is found within seconds.

A hub that admits runners by GitHub OIDC token gets one in the ``Hello`` of every connection
(``credentials``); a hub that refuses it is retried only every ``refused_backoff`` seconds, with
a fresh token, and the reason is kept in :attr:`HubLink.last_error`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID

from github_p2p.errors import (
    AdmissionError,
    FleetUnavailableError,
    LocalProtocolError,
    RemoteProtocolError,
)
from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import RunningHost, dial
from github_p2p.p2p.messages import Error, Hello, Ok, Report, Request, Response, Scalar
from github_p2p.p2p.wire import PROTOCOL_ID

__all__ = ["HubLink", "LinkSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    """Timeouts and backoff of a hub link."""

    dial_timeout: float = 5.0
    request_timeout: float = 10.0
    backoff_initial: float = 0.25
    backoff_max: float = 5.0
    #: How often the runner's counters go to the hub (only when they changed).
    report_interval: float = 2.0
    #: How long a hub that refused to admit us is left alone before we try again.
    refused_backoff: float = 60.0

    def __post_init__(self) -> None:
        for name in ("dial_timeout", "request_timeout", "backoff_initial", "backoff_max",
                     "report_interval", "refused_backoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive")


@dataclass
class _Pending:
    done: trio.Event = field(default_factory=trio.Event)
    reply: Response | None = None


class HubLink:
    """Keeps one hub connected and turns requests into replies."""

    def __init__(self, running: RunningHost, multiaddr: str, hello: Callable[[int], Hello],
                 settings: LinkSettings | None = None, *,
                 report: Callable[[], Mapping[str, Scalar]] | None = None,
                 credentials: Callable[[bool], Awaitable[str | None]] | None = None) -> None:
        """``credentials(fresh)`` gives the OIDC token for each ``Hello`` (``fresh`` after a
        refusal), or ``None``; it may raise :class:`AdmissionError`."""
        self.running = running
        self.multiaddr = multiaddr
        self.hub_id = multiaddr.rsplit("/p2p/", 1)[-1]
        self.settings = settings or LinkSettings()
        self._hello = hello
        self._report = report
        self._credentials = credentials
        self._refused = False
        self._channel: MessageChannel | None = None
        self._pending: dict[int, _Pending] = {}
        self._rids = itertools.count(1)
        self.connected_since: float | None = None
        self.last_error: str | None = None
        self.connects = 0

    @property
    def connected(self) -> bool:
        """True while the stream to the hub is up."""
        return self._channel is not None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the link up until cancelled; ``started`` after the first attempt either way."""
        backoff = self.settings.backoff_initial
        first = True
        while True:
            try:
                channel = await self._connect()
            except AdmissionError as exc:
                self.last_error = str(exc)
                self._refused = True
                log.warning("not admitted by hub %s: %s", self.hub_id, exc)
                if first:
                    task_status.started()
                    first = False
                await trio.sleep(self.settings.refused_backoff)
                continue
            except FleetUnavailableError as exc:
                self.last_error = str(exc)
                log.warning("hub %s unreachable: %s", self.multiaddr, exc)
                if first:
                    task_status.started()
                    first = False
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max)
                continue
            self._refused = False
            backoff = self.settings.backoff_initial
            self._channel = channel
            self.connected_since = time.time()
            self.connects += 1
            self.last_error = None
            log.info("connected to hub %s", self.hub_id)
            if first:
                task_status.started()
                first = False
            try:
                async with trio.open_nursery() as nursery:
                    if self._report is not None:
                        nursery.start_soon(self._send_reports, self._report)
                    await self._read(channel)
                    nursery.cancel_scope.cancel()
            finally:
                self._channel = None
                self.connected_since = None
                self._fail_pending()
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await channel.close()
            log.warning("lost the hub %s; reconnecting", self.hub_id)
            await trio.sleep(self.settings.backoff_initial)

    async def _connect(self) -> MessageChannel:
        settings = self.settings
        peer_id = await dial(self.running, self.multiaddr, settings.dial_timeout)
        try:
            with trio.fail_after(settings.dial_timeout):
                stream = await self.running.host.new_stream(
                    PeerID.from_base58(peer_id), [TProtocol(PROTOCOL_ID)])
        except trio.TooSlowError as exc:
            raise FleetUnavailableError(f"hub {peer_id} did not open a stream in time") from exc
        except Exception as exc:  # libp2p raises a wide variety here
            raise FleetUnavailableError(f"hub {peer_id} refused a stream: {exc}") from exc
        channel = MessageChannel(stream)
        # Introduce ourselves before any other request, on the stream itself.
        rid = next(self._rids)
        try:
            hello = self._hello(rid)
            if self._credentials is not None:
                hello = dataclasses.replace(hello, token=await self._credentials(self._refused))
        except AdmissionError:
            await channel.close()
            raise
        except LocalProtocolError as exc:
            await channel.close()
            raise AdmissionError(f"the OIDC token does not fit a Hello: {exc}") from exc
        try:
            with trio.fail_after(settings.request_timeout):
                await channel.send(hello)
                reply = await channel.receive()
        except (trio.TooSlowError, RemoteProtocolError, FleetUnavailableError) as exc:
            await channel.close()
            raise FleetUnavailableError(f"hub {peer_id} did not answer hello") from exc
        if not isinstance(reply, Ok):
            await channel.close()
            if isinstance(reply, Error) and reply.code == "unauthorized":
                raise AdmissionError(f"hub {peer_id} refused admission: {reply.message}")
            raise FleetUnavailableError(f"hub {peer_id} refused hello: {reply!r}")
        return channel

    async def _read(self, channel: MessageChannel) -> None:
        while True:
            try:
                message = await channel.receive()
            except RemoteProtocolError as exc:
                log.warning("hub %s broke the protocol: %s", self.hub_id, exc)
                return
            if message is None:
                return
            pending = self._pending.get(getattr(message, "rid", -1))
            if pending is None:
                log.debug("reply for an unknown request from hub %s", self.hub_id)
                continue
            pending.reply = message  # type: ignore[assignment]
            pending.done.set()

    async def _send_reports(self, snapshot: Callable[[], Mapping[str, Scalar]]) -> None:
        """Send our counters now and whenever they change; runs for one connection."""
        last: dict[str, Scalar] | None = None
        while True:
            current = dict(snapshot())
            if current != last:
                try:
                    await self.call(functools.partial(Report, stats=current),
                                    self.settings.request_timeout)
                    last = current
                except FleetUnavailableError as exc:
                    # The dashboard's totals lag a little; the cache itself is unaffected.
                    log.debug("report to hub %s failed: %s", self.hub_id, exc)
                except LocalProtocolError as exc:
                    log.warning("cannot report counters to hub %s: %s", self.hub_id, exc)
                    return
            await trio.sleep(self.settings.report_interval)

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            pending.done.set()  # reply stays None: the caller raises

    async def call(self, make: Callable[[int], Request], timeout: float) -> Response:
        """Send ``make(rid)`` and wait for its reply, at most ``timeout`` seconds.

        Raises :class:`FleetUnavailableError` when the link is down, dies meanwhile, or the hub
        is too slow; an ``Error`` reply is raised as :class:`FleetUnavailableError` too.
        """
        channel = self._channel
        if channel is None:
            raise FleetUnavailableError(f"hub {self.hub_id} is not connected")
        rid = next(self._rids) & 0xFFFFFFFF
        pending = self._pending[rid] = _Pending()
        try:
            await channel.send(make(rid))
            with trio.move_on_after(timeout):
                await pending.done.wait()
        finally:
            del self._pending[rid]
        reply = pending.reply
        if reply is None:
            raise FleetUnavailableError(f"no answer from hub {self.hub_id}")
        if isinstance(reply, Error):
            raise FleetUnavailableError(f"hub {self.hub_id} answered {reply.code}: "
                                        f"{reply.message}")
        return reply
