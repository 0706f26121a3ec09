"""The bootstrap node: serves ``/github-p2p/cache/1.0.0`` to runners, plus its HTTP status.

It holds the network key (to join the private network) and never the sealing keys: it keeps
envelopes by id, coalesces fills with leases, and reports what it sees. Every inbound request
runs under a semaphore and a deadline; a malformed frame gets an ``Error`` reply (or the stream
is reset when the framing itself is lost) and is counted, never crashes the node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from github_p2p.core.lease import LeaseOutcome
from github_p2p.errors import FleetUnavailableError, RemoteProtocolError
from github_p2p.nodes.hub.admission import HubAdmission, OidcSettings, StreamGate
from github_p2p.nodes.hub.envelopes import DiskEnvelopeStore
from github_p2p.nodes.hub.limits import WAITING_TYPES, Hold, HubGuard, HubLimits, OverBudget
from github_p2p.nodes.hub.queues import HubQueues
from github_p2p.nodes.hub.reports import FleetReports
from github_p2p.nodes.hub.state import HubState, LocalHubState
from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import (
    HostSettings,
    RunningHost,
    muxer_buffered_bytes,
    reset_stream,
    running_host,
    set_safe_stream_handler,
)
from github_p2p.p2p.messages import (
    REQUEST_TYPES,
    Delete,
    Entry,
    Error,
    FrameRejected,
    Get,
    Hello,
    Lease,
    LeaseReply,
    LimitNote,
    NotFound,
    Ok,
    PeersQuery,
    PeersReply,
    Put,
    Release,
    Report,
    Request,
    Response,
    StatsQuery,
    StatsReply,
)
from github_p2p.p2p.queue_messages import QUEUE_REQUEST_TYPES
from github_p2p.p2p.wire import PROTOCOL_ID, error_reply_for
from github_p2p.workqueue.store import QueueStore

__all__ = ["HubService", "HubSettings", "PeerRecord"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubSettings:
    """How to run a hub."""

    cache_dir: Path
    network_key: bytes | None = field(default=None, repr=False)
    listen_host: str = "0.0.0.0"
    port: int = 9100
    identity_file: str | None = None
    public_ip: str | None = None
    size_limit: int = 1024 * 1024 * 1024
    lease_ttl: float = 30.0
    #: A stream with no complete frame for this long is closed (slow or dead peers).
    idle_timeout: float = 900.0
    #: Bound on handling one request, lease waits included.
    request_timeout: float = 75.0
    #: Requests handled at once across all streams; more wait their turn.
    max_inflight: int = 512
    #: Requests of one stream handled at once. Past it the hub stops reading that stream, so a
    #: peer that sends without reading its replies holds at most this many replies in memory.
    #: A runner never has more in flight than its worker threads (40).
    max_stream_inflight: int = 64
    #: Admit runners only with a GitHub Actions OIDC token, each bound to its repository.
    oidc: OidcSettings | None = None
    #: What one member may cost the hub (streams, buffered bytes, deadlines, lease waits).
    limits: HubLimits = field(default_factory=HubLimits)


@dataclass
class PeerRecord:
    """A connected peer as the dashboard shows it."""

    peer_id: str
    role: str = "runner"
    arch: str = ""
    runner: str = ""
    version: str = ""
    #: The repository its OIDC token names (OIDC hubs only).
    repository: str = ""
    connected_since: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    requests: int = 0

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON endpoints serve it."""
        return {
            "peer_id": self.peer_id, "role": self.role, "arch": self.arch,
            "runner_name": self.runner, "version": self.version,
            "repository": self.repository, "connected_since": self.connected_since,
            "last_seen": self.last_seen, "requests": self.requests,
        }


class HubService:
    """A running hub: libp2p host, blind store, lease board and peer table."""

    role = "bootstrap"

    def __init__(self, settings: HubSettings, state: HubState | None = None, *,
                 queue_store: QueueStore | None = None) -> None:
        self.settings = settings
        self.state: HubState = state or LocalHubState(
            DiskEnvelopeStore(settings.cache_dir / "envelopes", size_limit=settings.size_limit),
            lease_ttl=settings.lease_ttl)
        self.admission = HubAdmission(settings.oidc, settings.network_key)
        self.guard = HubGuard(settings.limits)
        self.reports = FleetReports()
        self.queues = HubQueues(settings.cache_dir, shutting_down=lambda: self.shutdown.is_set(),
                                store=queue_store)
        #: ``registry_*`` figures of the hub's registry heartbeat, when it runs one.
        self.registry_stats: Callable[[], Mapping[str, int]] | None = None
        self.running: RunningHost | None = None
        self._peers: dict[int, PeerRecord] = {}
        self._next_conn = 0
        self._limit = trio.Semaphore(settings.max_inflight)
        self.shutdown = trio.Event()
        self.counts = dict.fromkeys(
            ("requests", "gets", "hits", "misses", "puts", "deletes", "leases", "releases",
             "reports", "protocol_errors", "stream_errors", "bytes_in", "bytes_out"), 0)
        self.started_at = time.time()

    # -- NodeView ----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``starting``, ``active``, or ``degraded`` while its shared state (Redis) is out of
        reach and it serves from its own fallback."""
        if not self.running:
            return "starting"
        return "degraded" if self.state.figures().get("state_status") == "degraded" else "active"

    def health(self) -> dict[str, Any]:
        """Liveness of the hub."""
        return {"status": self.status, "role": self.role,
                "peer_id": self.running.peer_id if self.running else None,
                "multiaddrs": self.running.multiaddrs if self.running else [],
                "uptime": round(time.time() - self.started_at, 1)}

    def stats(self) -> dict[str, Any]:
        """Hub counters, with the fleet-statistics names where they apply.

        ``fleet_*`` are the totals of what the runners reported (see :mod:`.reports`).
        """
        c = self.counts
        figures = self.state.figures()
        served = c["hits"] + int(figures.get("coalesced_waits", 0))
        asked = c["gets"] + c["leases"]
        return {
            **c,
            **figures,
            "role": self.role,
            "status": self.status,
            "peer_hits": served,
            "hit_rate": round(served / asked, 4) if asked else 0.0,
            "connected_peers": len(self._peers),
            "oidc_admitted": self.admission.counts["admitted"],
            "oidc_refused": self.admission.counts["refused"],
            **self.guard.stats(),
            "muxer_buffered_bytes": muxer_buffered_bytes(self.running) if self.running else 0,
            **self.reports.totals(),
            **self.queues.stats(),
            **(self.registry_stats() if self.registry_stats is not None else {}),
        }

    def peers(self) -> list[dict[str, Any]]:
        """Connected peers, each with the counters it last reported (``stats``)."""
        out = []
        for record in self._peers.values():
            report = self.reports.latest(record.peer_id)
            out.append({**record.to_json(), "stats": report.to_json() if report else {}})
        return out

    def request_shutdown(self) -> None:
        """Ask :meth:`run` to return."""
        self.shutdown.set()

    # -- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`request_shutdown`; ``task_status.started(running_host)``."""
        host_settings = HostSettings(
            listen_host=self.settings.listen_host, port=self.settings.port,
            psk=self.settings.network_key, identity_file=self.settings.identity_file,
            announce_host=self.settings.public_ip,
        )
        try:
            async with running_host(host_settings) as running:
                self.running = running
                set_safe_stream_handler(running, PROTOCOL_ID, self._serve_stream)
                task_status.started(running)
                await self.shutdown.wait()
        finally:
            self.running = None
            self.state.close()
            self.queues.close()

    async def _serve_stream(self, stream: Any) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        if not self.guard.open_stream(peer_id, stream.muxed_conn):
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self._drop(stream)  # one stream too many: not even read
            return
        self._next_conn += 1
        conn = self._next_conn
        record = self._peers[conn] = PeerRecord(peer_id)
        channel = MessageChannel(stream)
        holder = f"{peer_id}#{conn}"
        slots = trio.Semaphore(self.settings.max_stream_inflight)
        gate = self.admission.gate()
        frames = self.guard.frames(peer_id)
        clean = False  # the peer closed, or an idle stream timed out: nothing to drop
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    with trio.move_on_after(self.settings.idle_timeout) as waiting:
                        try:
                            message = await channel.receive(frames.before_read(waiting))
                        except FrameRejected as exc:
                            self.counts["protocol_errors"] += 1
                            await self._reply_safely(channel, error_reply_for(exc))
                            if exc.fatal:
                                break
                            continue
                        except RemoteProtocolError:
                            self.counts["protocol_errors"] += 1
                            break
                        except OverBudget:
                            self.guard.counts["budget_drops"] += 1
                            break
                        if message is None:
                            clean = True
                            break
                        frames.settle(channel.pending)
                        if not isinstance(message, REQUEST_TYPES):
                            self.counts["protocol_errors"] += 1
                            await self._reply_safely(channel, Error(
                                getattr(message, "rid", None), "unknown_op",
                                f"{type(message).__name__} is not a request"))
                            continue
                        record.last_seen = time.time()
                        record.requests += 1
                        payload = self.guard.payload(peer_id, message)
                        if payload is None:
                            await self._reply_safely(channel, Error(
                                message.rid, "busy", "the hub has no room for this payload now"))
                            continue
                        await slots.acquire()  # backpressure on a peer that does not read
                        nursery.start_soon(self._handle, channel, message, holder, record,
                                           slots, nursery.cancel_scope, gate, payload)
                        continue
                    if frames.in_frame:
                        self.guard.counts["frame_timeouts"] += 1
                    else:
                        clean = True
                    break  # idle for too long, or a frame too slow to arrive
                nursery.cancel_scope.cancel()
        finally:
            del self._peers[conn]
            frames.release()
            self.guard.close_stream(peer_id, stream.muxed_conn)
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                # A runner that vanished mid-fill must not keep others waiting for its lease.
                await self.state.release_holder(holder)
                await self.queues.release_holder(holder)
                if clean or gate.refused:
                    await channel.close()
                else:
                    # Whatever the peer still sends on it, or has sent unread, is dropped now.
                    await self._drop(stream)

    async def _drop(self, stream: Any) -> None:
        if self.running is not None:
            await reset_stream(self.running, stream)
        else:
            await MessageChannel(stream).close()

    async def _reply_safely(self, channel: MessageChannel, reply: Response) -> bool:
        """Send ``reply``; False (and counted) when the stream failed or stalled."""
        with trio.move_on_after(self.guard.limits.write_timeout):
            try:
                await channel.send(reply)
                return True
            except FleetUnavailableError:
                pass
        self.counts["stream_errors"] += 1  # failed, or stalled past the write deadline
        return False

    async def _handle(self, channel: MessageChannel, message: Any, holder: str,
                      record: PeerRecord, slots: trio.Semaphore, stream_scope: trio.CancelScope,
                      gate: StreamGate, payload: Hold) -> None:
        peer = record.peer_id
        hold = None
        try:
            pending: list[Response] = []
            if isinstance(message, WAITING_TYPES):
                # Waiting (for another runner's fill, for queue items) holds no request slot.
                with self.guard.waiting(peer, message) as bounded:
                    pending.append(await self._respond(bounded, message, holder, record, gate))
            else:
                async with self._limit:
                    pending.append(await self._respond(message, message, holder, record, gate))
            payload.release()
            reply, hold = await self.guard.reply(
                peer, pending, self.state.get)
            sent = await self._reply_safely(channel, gate.outbound(reply, message))
            if gate.refused:
                stream_scope.cancel()  # one refused Hello is all a stream gets
            elif not sent:
                # A stream that cannot take a reply (peer gone, or not reading for seconds)
                # has lost its framing or its reader: stop serving it, freeing its replies.
                stream_scope.cancel()
        finally:
            payload.release()
            if hold is not None:
                hold.release()
            slots.release()

    async def _respond(self, message: Any, original: Any, holder: str, record: PeerRecord,
                       gate: StreamGate) -> Response:
        """The reply to ``message`` (``original`` as the peer sent it), within the request
        timeout, for a stream past its admission gate; ids still in the hub's space."""
        self.counts["requests"] += 1
        # move_on_after, not fail_after, here and in _reply_safely: fail_after is a generator
        # context manager, and the two were a measurable share of a hub hit's CPU.
        with trio.move_on_after(self.settings.request_timeout):
            refusal = await gate.check(original)
            return refusal or await self._answer(gate.inbound(message), holder, record, gate)
        return Error(getattr(message, "rid", 0), "busy", "request timed out at the hub")

    async def _answer(self, msg: Request | Response, holder: str, record: PeerRecord,
                      gate: StreamGate) -> Response:
        if isinstance(msg, QUEUE_REQUEST_TYPES):
            return await self.queues.answer(msg, holder, record.peer_id)
        if isinstance(msg, Lease):
            self.counts["leases"] += 1
            answer = await self.state.lease(msg.entry_id, holder, msg.wait)
            stored = answer.payload
            if answer.outcome is LeaseOutcome.GRANTED:
                self.counts["misses"] += 1
            elif answer.outcome is LeaseOutcome.HIT:
                self.counts["hits"] += 1
            envelope = stored.envelope if stored is not None else b""
            self.counts["bytes_out"] += len(envelope)
            lease = answer.lease
            limits = gate.visible_limits(await self.state.limits(time.time()))
            return LeaseReply(msg.rid, msg.entry_id, answer.outcome.value, envelope,
                              answer.fresh, lease.token if lease else None,
                              lease.ttl if lease else 0.0, dict(limits) or None)
        if isinstance(msg, LimitNote):
            await self.state.note_limit(gate.limit_key(msg.resource), msg.until)
            return Ok(msg.rid)
        if isinstance(msg, Get):
            self.counts["gets"] += 1
            stored = await self.state.get(msg.entry_id)
            if stored is None:
                self.counts["misses"] += 1
                return NotFound(msg.rid, msg.entry_id)
            self.counts["hits"] += 1
            self.counts["bytes_out"] += len(stored.envelope)
            return Entry(msg.rid, msg.entry_id, stored.envelope,
                         stored.is_fresh(time.time()), max(0.0, time.time() - stored.stored_at))
        if isinstance(msg, Put):
            self.counts["puts"] += 1
            self.counts["bytes_in"] += len(msg.envelope)
            await self.state.put(msg.entry_id, msg.envelope, fresh_ttl=msg.fresh_ttl,
                                 keep_ttl=msg.keep_ttl, tag=msg.tag,
                                 lease_token=msg.lease_token)
            return Ok(msg.rid)
        if isinstance(msg, Delete):
            self.counts["deletes"] += 1
            await self.state.delete(msg.entry_id)
            return Ok(msg.rid)
        if isinstance(msg, Release):
            self.counts["releases"] += 1
            await self.state.release(msg.entry_id, msg.lease_token)
            return Ok(msg.rid)
        if isinstance(msg, Hello):
            record.role, record.arch, record.runner, record.version = (
                msg.role, msg.arch, msg.runner, msg.version)
            record.repository = gate.admission.repository if gate.admission else ""
            return Ok(msg.rid)
        if isinstance(msg, Report):
            self.counts["reports"] += 1
            self.reports.update(record.peer_id, msg.stats, time.time())
            return Ok(msg.rid)
        if isinstance(msg, StatsQuery):
            scalars = {k: v for k, v in self.stats().items()
                       if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
            return StatsReply(msg.rid, scalars)
        if isinstance(msg, PeersQuery):
            return PeersReply(msg.rid, [
                {k: v for k, v in p.items() if isinstance(v, (int, float, str))}
                for p in self.peers() if gate.sees(str(p.get("repository", "")))])
        return Error(getattr(msg, "rid", 0), "unknown_op",
                     f"{type(msg).__name__} is not a request")
