"""One member exhausting or stalling the hub (issue 12, finding 7), against a real hub process.

The attacker (:mod:`github_p2p.testing.attacks`) holds the network key and spreads its streams
over identities of 8 streams each (the hub's per-peer bound):

* **non-reading streams**: each asks for a 4 MiB entry 80 times and never reads a reply. Before
  the fix every stream held up to 64 replies in memory: 8 streams took the hub to 4 GB (here:
  past the 1.5 GB safety valve, which kills it);
* **partial frames**: each announces a 4 MiB frame, sends all of it but the last bytes, and
  stalls. Before the fix each was buffered until the 900 s idle timeout (+200 MB for 40);
* **lease-wait flood**: 600 lease requests that wait for fills that never come. Before the fix
  they held 512 of the hub's request slots, and an honest runner's peer hit took 35 s and came
  back a miss.

Each test checks the hub's resident memory (sampled every 50 ms), that it recovers once the
attacker leaves, and that an honest runner is served meanwhile.
"""

from __future__ import annotations

import os
import time
from contextlib import AsyncExitStack

import pytest
import trio
from test_faults_support import START, Answers, contents, figures, get, node_stats, wait_until

from github_p2p.core.keys import derive_network_key
from github_p2p.p2p.host import HostSettings, running_host
from github_p2p.testing.attacks import (
    MemorySampler,
    attack,
    hold_lease,
    non_reader,
    put_envelope,
    stalled_writer,
    wait_for_fills,
)
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.procstat import rss_mb
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "exhaustion-fleet-secret"
PSK = derive_network_key(SECRET)
MiB = 1024 * 1024
#: The acceptance bound on the hub's growth under attack, and what "recovered" allows (what
#: the allocator keeps after the attack, not a leak: it does not grow with more rounds).
GROWTH_BOUND_MB = 150
RECOVERED_MB = 60


def memory(hub: NodeProcess) -> MemorySampler:
    return MemorySampler(hub.process.pid, hub.kill)


def warm_up(runner: NodeProcess, answers: Answers, paths: list[str]) -> None:
    for path in paths:
        answers.check(path, get(runner, path, "ghs_warmup"))


#: How long each attack is kept up (past the hub's 10 s deadlines): its steady state counts.
HOLD_SECONDS = 15.0


def honest(runner: NodeProcess, answers: Answers, paths: list[str]) -> list[str]:
    """An honest runner's requests during the attack, each answered right; then the attack is
    kept up until ``HOLD_SECONDS`` have passed."""
    started = time.monotonic()
    served = [answers.check(path, get(runner, path, "ghs_honest")) for path in paths]
    time.sleep(max(0.0, HOLD_SECONDS - (time.monotonic() - started)))
    return served


def recovered(hub: NodeProcess) -> float:
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
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET) as fleet:
        answers = Answers(sim, warm + during)
        hub = fleet.start_hub(timeout=START)
        runner = fleet.start_peer(timeout=START)
        trio.run(put_envelope, hub.multiaddr, PSK, big, 4 * MiB)
        warm_up(runner, answers, warm)
        with memory(hub) as sampled:
            served = trio.run(attack, hub.multiaddr, PSK, streams, non_reader(big),
                              lambda: honest(runner, answers, during))
            after = recovered(hub)
        assert not sampled.killed, "the hub grew past the safety valve"
        stats = node_stats(hub)
        figures(f"non-reading-{streams}", streams=streams, baseline_mb=round(sampled.baseline),
                peak_growth_mb=round(sampled.growth), after_mb=round(after),
                buffered_peak_mb=round(stats["buffered_bytes_peak"] / MiB, 1),
                replies_deferred=stats["replies_deferred"], stream_errors=stats["stream_errors"],
                honest_served=len(served))
        assert sampled.growth <= GROWTH_BOUND_MB, (sampled.baseline, sampled.peak)
        assert after - sampled.baseline <= RECOVERED_MB
        assert len(served) == len(during)
        assert stats["buffered_bytes_peak"] <= stats["buffer_budget"]


def test_partial_frames_are_bounded_and_dropped_by_the_hub_itself(tmp_path):
    streams = 40
    warm, during = contents("warm", 3), contents("partial", 10)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET) as fleet:
        answers = Answers(sim, warm + during)
        hub = fleet.start_hub(timeout=START)
        runner = fleet.start_peer(timeout=START)
        warm_up(runner, answers, warm)

        def meanwhile() -> tuple[list[str], float]:
            served = honest(runner, answers, during)
            started = time.monotonic()
            # The hub ends the stalled streams itself, the attacker still connected.
            wait_until(lambda: node_stats(hub)["connected_peers"] <= 1, 120,
                       "the hub to drop the stalled streams")
            return served, time.monotonic() - started

        with memory(hub) as sampled:
            served, dropped_after = trio.run(attack, hub.multiaddr, PSK, streams,
                                             stalled_writer(4 * MiB + 1000), meanwhile)
            after = recovered(hub)
        assert not sampled.killed, "the hub grew past the safety valve"
        stats = node_stats(hub)
        figures("partial-frames", streams=streams, peak_growth_mb=round(sampled.growth),
                after_mb=round(after), baseline_mb=round(sampled.baseline),
                frame_timeouts=stats["frame_timeouts"], budget_drops=stats["budget_drops"],
                dropped_within_s=round(dropped_after, 1), honest_served=len(served))
        assert sampled.growth <= GROWTH_BOUND_MB, (sampled.baseline, sampled.peak)
        assert after - sampled.baseline <= RECOVERED_MB
        assert stats["frame_timeouts"] + stats["budget_drops"] >= streams
        assert len(served) == len(during)


def test_a_lease_wait_flood_does_not_hold_up_an_honest_peer_hit(tmp_path):
    waits_per_identity, identity_count = 60, 10  # 600 waits, within the per-peer cap
    shared = contents("shared", 5)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET) as fleet:
        answers = Answers(sim, shared)
        hub = fleet.start_hub(timeout=START)
        filler, asker = fleet.start_peer(timeout=START), fleet.start_peer(timeout=START)
        warm_up(filler, answers, shared)  # on the hub now: the asker's are peer hits

        def peer_hits() -> list[tuple[str, float]]:
            took = []
            for path in shared:
                started = time.monotonic()
                outcome = answers.check(path, get(asker, path, "ghs_asker"))
                took.append((outcome, time.monotonic() - started))
            return took

        async def flood() -> list[tuple[str, float]]:
            async with AsyncExitStack() as stack:
                hosts = [await stack.enter_async_context(running_host(HostSettings(psk=PSK)))
                         for _ in range(identity_count + 1)]
                greedy = hosts.pop()
                # Every lease is held before the flood starts (the unfixed hub would queue them).
                held = [await hold_lease(host, hub.multiaddr) for host in hosts]
                greedy_held = await hold_lease(greedy, hub.multiaddr, 4)
                async with trio.open_nursery() as nursery:
                    for channels, entry in held:
                        nursery.start_soon(wait_for_fills, channels, entry, waits_per_identity)
                    # One identity asks for far more waits than its share.
                    nursery.start_soon(wait_for_fills, *greedy_held, 4 * waits_per_identity)
                    await trio.to_thread.run_sync(lambda: wait_until(
                        # 500: the unfixed hub had 512 request slots, all taken by waits.
                        lambda: node_stats(hub)["waiters"] >= 500, 120,
                        "the flood to be waiting"))
                    took = await trio.to_thread.run_sync(peer_hits)
                    nursery.cancel_scope.cancel()
                return took

        took = trio.run(flood)
        stats = node_stats(hub)
        slowest = max(seconds for _, seconds in took)
        figures("lease-wait-flood", waits=identity_count * waits_per_identity,
                slowest_peer_hit_s=round(slowest, 3), capped=stats["lease_waits_capped"])
        # Before the fix the hub's request slots were all waiting: the asker's lease request
        # queued until its own deadline and it went to GitHub (a miss, after 35 s).
        assert [outcome for outcome, _ in took] == ["hit-peer"] * len(shared), took
        assert slowest <= 2.0, took
        assert stats["lease_waits_capped"] >= 4 * waits_per_identity - 64
