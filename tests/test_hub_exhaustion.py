"""One member exhausting or stalling the hub (issue 12, finding 7), against a real hub process.

The attacker holds the network key, so it gets past the PSK and Noise and speaks the protocol.
It spreads its streams over several identities (8 streams each, the hub's per-peer bound), as a
careful attacker would:

* **non-reading streams**: each asks for a 4 MiB entry 80 times and never reads a reply. Before
  the fix every stream held up to 64 replies in memory: 8 streams took the hub to 4 GB;
* **partial frames**: each announces a 4 MiB frame, sends all of it but the last bytes, and
  stalls. Before the fix each was buffered until the 900 s idle timeout;
* **lease-wait flood**: 600 lease requests that wait for fills that never come. Before the fix
  they held 512 of the hub's request slots, and an honest runner's peer hit took 35 s.

Each test checks the hub's resident memory (sampled every 50 ms; a safety valve kills the hub
past 1.5 GB of growth, so the unfixed hub fails the test instead of the machine), that it
recovers once the attacker leaves, and that an honest runner is served meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from test_faults_support import (
    START,
    Answers,
    contents,
    figures,
    get,
    node_stats,
    rss_mb,
    wait_until,
)

from github_p2p.core.keys import derive_network_key
from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import HostSettings, RunningHost, dial, reset_stream, running_host
from github_p2p.p2p.messages import Get, Lease, LeaseReply, Ok, Put
from github_p2p.p2p.wire import PROTOCOL_ID, encode
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "exhaustion-fleet-secret"
MiB = 1024 * 1024
ENVELOPE = 4 * MiB
STREAMS_PER_IDENTITY = 8
#: The acceptance bound on the hub's growth under attack, and the safety valve.
GROWTH_BOUND_MB = 150
KILL_AT_MB = 1500


class Memory:
    """Samples a process's RSS every 50 ms; kills it past ``KILL_AT_MB`` of growth."""

    def __init__(self, process: NodeProcess) -> None:
        self.process = process
        self.baseline = rss_mb(process.process.pid)
        self.peak = self.baseline
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = rss_mb(self.process.process.pid)
            except (OSError, AssertionError):
                return
            self.peak = max(self.peak, now)
            if now - self.baseline > KILL_AT_MB:
                self.killed = True
                self.process.kill()
                return
            time.sleep(0.05)

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def growth(self) -> float:
        return self.peak - self.baseline


async def open_channel(me: RunningHost, hub: str) -> MessageChannel:
    peer_id = await dial(me, hub, 20)
    with trio.fail_after(20):
        stream = await me.host.new_stream(ID.from_base58(peer_id), [TProtocol(PROTOCOL_ID)])
    return MessageChannel(stream)


async def identities(stack: AsyncExitStack, count: int) -> list[RunningHost]:
    psk = derive_network_key(SECRET)
    return [await stack.enter_async_context(running_host(HostSettings(psk=psk)))
            for _ in range(count)]


def fleet_with_hub(sim: GitHubSimulator, tmp_path: Any) -> LocalFleet:
    return LocalFleet(sim.url, workdir=tmp_path, secret=SECRET)


def warm_up(runner: NodeProcess, answers: Answers, paths: list[str]) -> None:
    for path in paths:
        answers.check(path, get(runner, path, "ghs_warmup"))


def honest(runner: NodeProcess, answers: Answers, paths: list[str]) -> list[str]:
    """An honest runner's requests during the attack: each answered right."""
    return [answers.check(path, get(runner, path, "ghs_honest")) for path in paths]


async def attack(hub: NodeProcess, streams: int,
                 per_stream: Callable[[MessageChannel], Awaitable[None]],
                 meanwhile: Callable[[], Any]) -> Any:
    """Open ``streams`` streams over enough identities, run ``per_stream`` on each (they may
    stall for ever), run ``meanwhile`` in a thread, then leave (close every host)."""
    async with AsyncExitStack() as stack:
        hosts = await identities(stack, -(-streams // STREAMS_PER_IDENTITY))
        channels = [await open_channel(hosts[n // STREAMS_PER_IDENTITY], hub.multiaddr)
                    for n in range(streams)]
        async def one(channel: MessageChannel) -> None:
            try:
                await per_stream(channel)
            except Exception:  # the hub reset this stream: the attack goes on elsewhere
                await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            for channel in channels:
                nursery.start_soon(one, channel)
            result = await trio.to_thread.run_sync(meanwhile)
            nursery.cancel_scope.cancel()
        # Leaving: every stream is reset (a host's close alone may linger on pending writes).
        for channel in channels:
            with trio.move_on_after(2):
                await reset_stream(hosts[0], channel.stream)
        return result


async def put_big(hub: NodeProcess, entry: bytes) -> None:
    async with running_host(HostSettings(psk=derive_network_key(SECRET))) as me:
        channel = await open_channel(me, hub.multiaddr)
        await channel.send(Put(1, entry, os.urandom(ENVELOPE), 3600, 3600))
        with trio.fail_after(60):
            assert isinstance(await channel.receive(), Ok)
        await channel.close()


def recovered(hub: NodeProcess, memory: Memory) -> float:
    """Wait until the hub holds no attacker stream and no buffered byte; its RSS then."""
    try:
        wait_until(lambda: node_stats(hub)["connected_peers"] <= 1
                   and node_stats(hub)["buffered_bytes"] == 0, 120,
                   "the hub to drop the attacker")
    except AssertionError:
        stats = node_stats(hub)
        raise AssertionError(f"{stats['connected_peers']} streams, {stats['buffered_bytes']} "
                             "bytes still held") from None
    return rss_mb(hub.process.pid)


@pytest.mark.parametrize("streams", [8, 40])
def test_non_reading_streams_of_large_replies(tmp_path, streams):
    big = os.urandom(32)
    warm, during = contents("warm", 6), contents(f"during{streams}", 10)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            fleet_with_hub(sim, tmp_path) as fleet:
        answers = Answers(sim, warm + during)
        hub = fleet.start_hub(timeout=START)
        runner = fleet.start_peer(timeout=START)
        trio.run(put_big, hub, big)
        warm_up(runner, answers, warm)

        async def non_reader(channel: MessageChannel) -> None:
            await channel.stream.write(b"".join(encode(Lease(rid, big, 0.0)) if rid % 2 else
                                                encode(Get(rid, big)) for rid in range(80)))
            await trio.sleep_forever()  # never reads

        with Memory(hub) as memory:
            served = trio.run(attack, hub, streams, non_reader,
                              lambda: honest(runner, answers, during))
            after = recovered(hub, memory)
        assert not memory.killed, f"the hub grew past {KILL_AT_MB} MB"
        stats = node_stats(hub)
        figures(f"non-reading-{streams}", streams=streams, baseline_mb=round(memory.baseline),
                peak_growth_mb=round(memory.growth), after_mb=round(after),
                buffered_peak_mb=round(stats["buffered_bytes_peak"] / MiB, 1),
                replies_deferred=stats["replies_deferred"], stream_errors=stats["stream_errors"],
                honest_served=len(served))
        assert memory.growth <= GROWTH_BOUND_MB, (memory.baseline, memory.peak)
        assert after - memory.baseline <= 50  # recovered: what glibc keeps, no more
        assert len(served) == len(during)
        assert stats["buffered_bytes_peak"] <= stats["buffer_budget"]


def test_partial_frames_are_bounded_and_dropped_by_the_hub_itself(tmp_path):
    streams = 40
    warm, during = contents("warm", 3), contents("partial", 10)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            fleet_with_hub(sim, tmp_path) as fleet:
        answers = Answers(sim, warm + during)
        hub = fleet.start_hub(timeout=START)
        runner = fleet.start_peer(timeout=START)
        warm_up(runner, answers, warm)

        async def stalled_writer(channel: MessageChannel) -> None:
            size = 4 * MiB + 1000
            prefix = bytearray()
            value = size
            while value >= 0x80:
                prefix.append((value & 0x7F) | 0x80)
                value >>= 7
            prefix.append(value)
            with trio.move_on_after(30):
                await channel.stream.write(bytes(prefix) + b"\x01\x03" + os.urandom(size - 10))
            await trio.sleep_forever()  # the last bytes never come

        def meanwhile() -> tuple[list[str], float]:
            served = honest(runner, answers, during)
            started = time.monotonic()
            # The hub ends the stalled streams itself, the attacker still connected.
            wait_until(lambda: node_stats(hub)["connected_peers"] <= 1, 120,
                       "the hub to drop the stalled streams")
            return served, time.monotonic() - started

        with Memory(hub) as memory:
            served, dropped_after = trio.run(attack, hub, streams, stalled_writer, meanwhile)
            after = recovered(hub, memory)
        assert not memory.killed, f"the hub grew past {KILL_AT_MB} MB"
        stats = node_stats(hub)
        figures("partial-frames", streams=streams, peak_growth_mb=round(memory.growth),
                after_mb=round(after), baseline_mb=round(memory.baseline),
                frame_timeouts=stats["frame_timeouts"], budget_drops=stats["budget_drops"],
                dropped_within_s=round(dropped_after, 1), honest_served=len(served))
        assert memory.growth <= GROWTH_BOUND_MB, (memory.baseline, memory.peak)
        assert after - memory.baseline <= 50
        assert stats["frame_timeouts"] + stats["budget_drops"] >= streams
        assert len(served) == len(during)


def test_a_lease_wait_flood_does_not_hold_up_an_honest_peer_hit(tmp_path):
    waits_per_identity, identity_count = 60, 10  # 600 waits, within the per-peer cap
    shared = contents("shared", 5)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            fleet_with_hub(sim, tmp_path) as fleet:
        answers = Answers(sim, shared)
        hub = fleet.start_hub(timeout=START)
        filler, asker = fleet.start_peer(timeout=START), fleet.start_peer(timeout=START)
        warm_up(filler, answers, shared)  # on the hub now: the asker's are peer hits

        async def flood() -> list[tuple[str, float]]:
            async with AsyncExitStack() as stack:
                hosts = await identities(stack, identity_count + 1)
                greedy = hosts.pop()
                # Every lease is held before the flood starts (the unfixed hub would queue them).
                held = [await _hold_lease(host, hub) for host in hosts]
                greedy_held = await _hold_lease(greedy, hub, 4)
                async with trio.open_nursery() as nursery:
                    for channels, entry in held:
                        nursery.start_soon(_wait_for_fills, channels, entry, waits_per_identity)
                    # One identity asks for far more waits than its share.
                    nursery.start_soon(_wait_for_fills, *greedy_held, 4 * waits_per_identity)
                    await trio.to_thread.run_sync(lambda: wait_until(
                        # 500: the unfixed hub had 512 request slots, all taken by waits.
                        lambda: node_stats(hub)["waiters"] >= 500, 120,
                        "the flood to be waiting"))

                    def peer_hits() -> list[tuple[str, float]]:
                        took = []
                        for path in shared:
                            started = time.monotonic()
                            outcome = answers.check(path, get(asker, path, "ghs_asker"))
                            took.append((outcome, time.monotonic() - started))
                        return took

                    took = await trio.to_thread.run_sync(peer_hits)
                    nursery.cancel_scope.cancel()
                return took

        took = trio.run(flood)
        stats = node_stats(hub)
        slowest = max(seconds for _, seconds in took)
        figures("lease-wait-flood", waits=identity_count * waits_per_identity,
                slowest_peer_hit_s=round(slowest, 3), capped=stats["lease_waits_capped"])
        # Before the fix the hub's request slots were all waiting: the asker's lease request
        # queued until its own deadline and it went to GitHub (a miss, after ~25 s).
        assert [outcome for outcome, _ in took] == ["hit-peer"] * len(shared), took
        assert slowest <= 2.0, took
        assert stats["lease_waits_capped"] >= 4 * waits_per_identity - 64


async def _hold_lease(me: RunningHost, hub: NodeProcess, streams: int = 1
                      ) -> tuple[list[MessageChannel], bytes]:
    """Streams of one identity, the first holding a lease on an id nobody will fill."""
    channels = [await open_channel(me, hub.multiaddr) for _ in range(streams)]
    entry = os.urandom(32)
    with trio.fail_after(30):
        await channels[0].send(Lease(1, entry, 0.0))
        reply = await channels[0].receive()
    assert isinstance(reply, LeaseReply) and reply.outcome == "granted"
    return channels, entry


async def _wait_for_fills(channels: list[MessageChannel], entry: bytes, waits: int) -> None:
    """Ask to wait for ``entry``'s fill ``waits`` times over ``channels``; never read."""
    per_stream = -(-waits // len(channels))
    for index, channel in enumerate(channels):
        await channel.stream.write(b"".join(
            encode(Lease(2 + index * per_stream + n, entry, 60.0)) for n in range(per_stream)))
    await trio.sleep_forever()
