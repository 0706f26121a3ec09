"""Work queues through a real hub over real libp2p (one trio run, loopback).

A hub service and two runner hosts, each runner with a :class:`HubLink` and a
:class:`FleetWorkQueue`: what a runner daemon does, without the HTTP layer.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from github_p2p.core.keys import derive_fleet_keys
from github_p2p.core.queueseal import FleetSealer, QueueRef
from github_p2p.errors import QueueConflictError, QueueNotFoundError, StaleLeaseError
from github_p2p.nodes.hub.queues import QUEUE_STORE_FILE
from github_p2p.nodes.hub.service import HubService, HubSettings
from github_p2p.p2p.host import HostSettings, running_host
from github_p2p.p2p.link import HubLink, LinkSettings
from github_p2p.p2p.messages import Hello
from github_p2p.workqueue.api import Claim, QueueStatus
from github_p2p.workqueue.daemon import DaemonQueues
from github_p2p.workqueue.fleet import FleetWorkQueue
from github_p2p.workqueue.local import LocalWorkQueue

KEYS = derive_fleet_keys("queue-fleet-secret-01", "octo/hello", iterations=1000)
REF = QueueRef("tests", "4711", 1)
ITEMS = [f"tests/test_{name}.py" for name in ("alpha", "beta", "gamma", "delta")]
FAST = LinkSettings(dial_timeout=5, request_timeout=10, backoff_initial=0.05, backoff_max=0.2)


@dataclass
class Runner:
    link: HubLink
    queue: FleetWorkQueue
    scope: trio.CancelScope


async def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
    assert predicate(), what


@asynccontextmanager
async def hub_at(tmp_path: Path, port: int = 0) -> AsyncIterator[HubService]:
    hub = HubService(HubSettings(cache_dir=tmp_path / "hub", listen_host="127.0.0.1",
                                 port=port, identity_file=str(tmp_path / "hub.key")))
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        try:
            yield hub
        finally:
            hub.request_shutdown()


@asynccontextmanager
async def runner(nursery: trio.Nursery, name: str, hub_addr: str) -> AsyncIterator[Runner]:
    async with running_host(HostSettings()) as running:
        link = HubLink(running, hub_addr, lambda rid: Hello(rid, "runner", "X64", name, "t"),
                       FAST)
        scope = trio.CancelScope()

        async def keep() -> None:
            with scope:
                await link.run()

        nursery.start_soon(keep)
        await wait_for(lambda: link.connected, f"{name} connects")
        queue = FleetWorkQueue(lambda: [link], FleetSealer(KEYS), holder=name,
                               connect_wait=15)
        try:
            yield Runner(link, queue, scope)
        finally:
            scope.cancel()


async def test_submit_claim_complete_and_the_hub_never_sees_an_item(tmp_path):
    async with hub_at(tmp_path) as hub, trio.open_nursery() as nursery:
        addr = hub.running.multiaddrs[0]  # type: ignore[union-attr]
        async with runner(nursery, "r1", addr) as r1, runner(nursery, "r2", addr) as r2:
            first = await r1.queue.submit(REF, ITEMS)
            again = await r2.queue.submit(REF, ITEMS)
            assert (first.created, again.created, again.total) == (True, False, 4)
            with pytest.raises(QueueConflictError) as caught:
                await r2.queue.submit(REF, [*ITEMS[:2], "tests/test_other.py"])
            message = str(caught.value)
            # Both lists are named where they differ: the hub's item opened by the runner.
            assert "'tests/test_gamma.py' there" in message
            assert "'tests/test_other.py' here" in message
            assert "4 items there, 3 in this submission" in message

            ran = []
            for r in (r1, r2, r1, r2):
                claim = await r.queue.claim(REF)
                assert isinstance(claim, Claim)
                ran.append(claim.item)
                done = await r.queue.complete(REF, claim.id, claim.token, ok=True)
                assert (done.state, done.outcome) == ("done", "done")
                repeat = await r.queue.complete(REF, claim.id, claim.token, ok=True)
                assert repeat.outcome == "repeat"
            assert ran == ITEMS
            status = await r1.queue.claim(REF, wait=5)
            assert isinstance(status, QueueStatus) and status.drained
            assert status.counts.done == 4
            with pytest.raises(QueueNotFoundError, match="submit it first"):
                await r1.queue.status(QueueRef("nope", "4711", 1))
        stats = hub.stats()
        assert stats["queue_claims"] == 4 and stats["queue_completions"] == 4
        assert stats["queue_conflicts"] == 1
    raw = (tmp_path / "hub" / QUEUE_STORE_FILE).read_bytes()
    wal = tmp_path / "hub" / (QUEUE_STORE_FILE + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"test_alpha" not in raw and b"tests/" not in raw and b"4711" not in raw


async def test_a_dropped_connection_hands_its_item_to_a_waiting_runner(tmp_path):
    async with hub_at(tmp_path) as hub, trio.open_nursery() as nursery:
        addr = hub.running.multiaddrs[0]  # type: ignore[union-attr]
        async with runner(nursery, "r1", addr) as r1, runner(nursery, "r2", addr) as r2:
            await r1.queue.submit(REF, ITEMS[:1])
            held = await r1.queue.claim(REF)
            assert isinstance(held, Claim)
            got: list[object] = []

            async def wait_for_item() -> None:
                got.append(await r2.queue.claim(REF, wait=30))

            nursery.start_soon(wait_for_item)
            await wait_for(lambda: hub.stats()["queue_claims"] == 1, "r1 claimed")
            start = trio.current_time()
            r1.scope.cancel()  # r1's link goes away with its lease
            await wait_for(lambda: bool(got), "r2 gets the item")
            assert trio.current_time() - start < 30  # not a 60 s lapse: the release
            (claim,) = got
            assert isinstance(claim, Claim) and claim.item == ITEMS[0] and claim.attempt == 2
            assert hub.stats()["queue_releases"] == 1
            with pytest.raises(StaleLeaseError, match="held by another lease"):
                await r2.queue.complete(REF, held.id, held.token)
            await r2.queue.complete(REF, claim.id, claim.token)


async def test_a_hub_restart_keeps_queues_and_leases(tmp_path):
    settings = HubSettings(cache_dir=tmp_path / "hub", listen_host="127.0.0.1", port=0,
                           identity_file=str(tmp_path / "hub.key"))
    async with trio.open_nursery() as nursery:
        hub = HubService(settings)
        running = await nursery.start(hub.run)
        addr = running.multiaddrs[0]
        async with runner(nursery, "r1", addr) as r1:
            await r1.queue.submit(REF, ITEMS)
            held = await r1.queue.claim(REF)
            assert isinstance(held, Claim)
            hub.request_shutdown()  # a clean stop: the leases are not handed back
            await wait_for(lambda: hub.running is None and not r1.link.connected, "hub down")
            port = int(addr.split("/tcp/")[1].split("/")[0])
            restarted = HubService(dataclasses.replace(settings, port=port))
            await nursery.start(restarted.run)
            await wait_for(lambda: r1.link.connected, "the link reconnects")
            status = await r1.queue.status(REF)
            assert (status.counts.leased, status.counts.ready) == (1, 3)
            assert status.holders[0].holder == "r1"
            renewal = await r1.queue.heartbeat(REF, held.id, held.token)
            assert renewal.expires_in > 50
            assert restarted.stats()["queue_leases_bound"] == 1  # bound to the new connection
            done = await r1.queue.complete(REF, held.id, held.token)
            assert done.state == "done"
            restarted.request_shutdown()
    with sqlite3.connect(tmp_path / "hub" / QUEUE_STORE_FILE) as db:
        assert db.execute("SELECT count(*) FROM items WHERE state = 'done'").fetchone() == (1,)


async def test_an_unreachable_hub_makes_the_queue_fall_back_to_this_runner(tmp_path):
    dead = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
    async with running_host(HostSettings()) as running, trio.open_nursery() as nursery:
        link = HubLink(running, dead, lambda rid: Hello(rid, "runner", "X64", "r", "t"), FAST)
        nursery.start_soon(link.run)
        fleet = FleetWorkQueue(lambda: [link], FleetSealer(KEYS), connect_wait=0.2)
        queues = DaemonQueues(LocalWorkQueue.open(None, sealer=FleetSealer(KEYS)), fleet,
                              holder="r", fallback_after=1.0)
        submitted = await queues.submit(REF, ITEMS)
        assert (submitted.mode, submitted.created) == ("local", True)
        assert submitted.notice and "hub is unreachable" in submitted.notice
        claim = await queues.claim(REF)
        assert isinstance(claim, Claim) and claim.mode == "local"
        assert (await queues.complete(REF, claim.id)).state == "done"  # the daemon's token
        assert (await queues.status(REF)).mode == "local"
        nursery.cancel_scope.cancel()
