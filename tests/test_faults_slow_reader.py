"""A fleet member that sends requests and never reads the replies, against a real hub process.

Without a bound, the hub reads every request of such a stream and holds every reply in memory
while it waits to write it: 300 requests for a 1 MiB entry grew the hub by 600 MB (measured
before the fix), and more requests by more. The hub now stops reading a stream with
``max_stream_inflight`` requests in flight, and drops a stream that cannot take a reply (yamux
gives up after 5 s without a window update), so the cost of a non-reader is bounded and
short-lived, and everyone else is served.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from test_faults_support import (
    START,
    Answers,
    assert_accounted,
    contents,
    figures,
    get,
    node_stats,
    rss_mb,
)

from github_p2p.core.keys import derive_network_key
from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import HostSettings, RunningHost, dial, running_host
from github_p2p.p2p.messages import Get, Ok, Put
from github_p2p.p2p.wire import PROTOCOL_ID, encode
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "slow-reader-fleet-secret"
ENVELOPE = 1024 * 1024
REQUESTS = 600


async def open_channel(me: RunningHost, hub: str) -> MessageChannel:
    peer_id = await dial(me, hub, 20)
    with trio.fail_after(20):
        stream = await me.host.new_stream(ID.from_base58(peer_id), [TProtocol(PROTOCOL_ID)])
    return MessageChannel(stream)


def test_non_reading_member_is_cut_off_and_others_are_served(tmp_path):
    paths = contents("meanwhile", 10)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET) as fleet:
        answers = Answers(sim, paths)
        hub = fleet.start_hub(timeout=START)
        runner = fleet.start_peer(timeout=START)
        psk = derive_network_key(SECRET)
        baseline = rss_mb(hub.process.pid)
        peak = [baseline]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], rss_mb(hub.process.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            served = trio.run(_scenario, hub, runner, psk, answers, paths)
        finally:
            sampling.set()
            sampler.join(10)

        hub_stats = node_stats(hub)
        assert hub.process.poll() is None
        assert hub_stats["stream_errors"] >= 1
        # Backpressure: the hub stopped reading the non-reader long before its 600 requests.
        assert hub_stats["gets"] < REQUESTS // 2
        assert peak[0] - baseline < 400, (baseline, peak[0])  # vs. ~1.2 GB unbounded
        assert len(served) == len(paths)  # each checked against GitHub's body as it came
        assert_accounted([node_stats(runner)], len(sim.records()), [len(paths)])
        figures("slow-reader", requests_sent=REQUESTS, envelope_mib=ENVELOPE // 2**20,
                hub_read_before_backpressure=hub_stats["gets"],
                hub_rss_peak_growth_mb=round(peak[0] - baseline),
                stream_errors=hub_stats["stream_errors"], others_served=len(served))


async def _scenario(hub: NodeProcess, runner: NodeProcess, psk: bytes, answers: Answers,
                    paths: list[str]) -> list[str]:
    big = os.urandom(32)
    async with running_host(HostSettings(psk=psk)) as me:
        filler = await open_channel(me, hub.multiaddr)
        await filler.send(Put(1, big, os.urandom(ENVELOPE), 3600, 3600))
        with trio.fail_after(30):
            assert isinstance(await filler.receive(), Ok)
        await filler.close()

        slow = await open_channel(me, hub.multiaddr)
        requests_bytes = b"".join(encode(Get(10 + i, big)) for i in range(REQUESTS))
        with trio.move_on_after(10):  # the hub may stop reading us before all of it is sent
            await slow.stream.write(requests_bytes)

        def meanwhile() -> list[str]:
            outcomes = []
            for path in paths:
                started = time.monotonic()
                resp = get(runner, path, "ghs_runner")
                assert time.monotonic() - started < 30
                outcomes.append(answers.check(path, resp))
            return outcomes

        outcomes = await trio.to_thread.run_sync(meanwhile)
        deadline = trio.current_time() + 60
        while trio.current_time() < deadline:
            stats = await trio.to_thread.run_sync(node_stats, hub)
            if stats["stream_errors"] >= 1:
                break
            await trio.sleep(0.2)
        return outcomes
