"""Hubs on Redis with real processes: three ``github-p2p bootstrap --redis-url`` hubs on one
real redis-server, runner daemons, and the GitHub simulator (issue 16's acceptance).

1. Nine runners spread over the three hubs (each linked to one hub only), all asking at once:
   GitHub is asked exactly once per resource, so the hubs coalesce through Redis.
2. A hub SIGKILLed mid-run (runners linked to every hub): no request fails, and no entry is
   lost: a runner started afterwards finds every resource in the fleet.
3. Redis stopped and started again mid-run: no request fails; every hub reports ``degraded``
   while Redis is away and ``active`` once it is back, and shares through it again.

Waits are on observable states (answered requests, health pages), never on sleeps.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence

import pytest
from test_faults_support import (
    START,
    Answers,
    assert_accounted,
    contents,
    figures,
    get,
    node_stats,
    run_parallel,
    session,
    wait_until,
)

from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.redisserver import RedisServer
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "redis-fleet-secret-0001"


def health(node: NodeProcess) -> str:
    return str(session().get(node.endpoint + "/_p2p/health", timeout=30).json()["status"])


def start_hubs(fleet: LocalFleet, redis: RedisServer, count: int) -> list[NodeProcess]:
    hubs = [fleet.start_hub(wait=False, args=["--redis-url", redis.url]) for _ in range(count)]
    for hub in hubs:
        hub.wait_ready(START)
        assert hub.info["status"] == "active"
    wait_until(lambda: all(node_stats(h)["shared_hubs"] == count for h in hubs), 60,
               "every hub to see the others in Redis")
    return hubs


def start_runners(fleet: LocalFleet, count: int, bootstrap: Callable[[int], str]
                  ) -> list[NodeProcess]:
    peers = [fleet.start_peer(wait=False, bootstrap=bootstrap(i)) for i in range(count)]
    for peer in peers:
        peer.wait_ready(START)
        assert peer.info["status"] == "active", peer.info
    return peers


class Load:
    """Runner threads asking resources in turn until stopped, checking every answer."""

    def __init__(self, peers: Sequence[NodeProcess], answers: Answers) -> None:
        self.peers = peers
        self.answers = answers
        self.problems: list[str] = []
        self.answered = 0
        self.asked: set[str] = set()
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def ask(self, runner: int, path: str) -> None:
        problem = self.answers.problem(path, get(self.peers[runner], path, f"ghs_{runner}"))
        with self._lock:
            self.answered += 1
            self.asked.add(path)
            if problem:
                self.problems.append(problem)

    def run(self, runner: int, source: Callable[[], str]) -> None:
        while not self.stop.is_set():
            self.ask(runner, source())

    def until_answered(self, more: int, timeout: float = 300) -> None:
        target = self.answered + more
        wait_until(lambda: self.answered >= target or bool(self.problems), timeout,
                   f"{more} more answers")
        assert self.problems == []


@pytest.fixture
def sim():
    with GitHubSimulator(SimulatorConfig(latency=0.05, rate_limit=10**7)) as simulator:
        yield simulator


@pytest.fixture
def fleet(sim, tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text("rules:\n  - pattern: '/contents/'\n    ttl: 3600\n")
    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET,
                    extra_env={"GITHUB_P2P_POLICY": str(policy)}) as local:
        yield local


def test_nine_runners_on_three_hubs_cost_one_call_per_resource(sim, fleet, redis_server):
    paths = contents("spread", 40)
    answers = Answers(sim, paths)
    hubs = start_hubs(fleet, redis_server, 3)
    peers = start_runners(fleet, 9, lambda i: hubs[i % 3].multiaddr)  # one hub each

    def runner(index: int) -> list[str]:
        order = paths[index % 2::2] + paths[1 - index % 2::2]  # not all in the same order
        return [answers.check(path, get(peers[index], path, f"ghs_{index}")) for path in order]

    outcomes = run_parallel([lambda i=i: runner(i) for i in range(9)])  # all at once
    upstream = sim.records()
    assert sorted(r.path for r in upstream) == sorted(paths)  # exactly once each
    stats = [node_stats(peer) for peer in peers]
    assert_accounted(stats, len(upstream), [len(paths)] * 9)
    hub_stats = [node_stats(hub) for hub in hubs]
    assert all(h["status"] == "active" and h["redis_outages"] == 0 for h in hub_stats)
    # Runners of every hub waited for fills made through other hubs.
    assert all(h["coalesced_waits"] > 0 for h in hub_stats), [h["coalesced_waits"]
                                                              for h in hub_stats]
    figures("redis-3-hubs-9-runners", requests=9 * len(paths), resources=len(paths),
            upstream_calls=len(upstream),
            peer_hits=sum(o.count("hit-peer") for o in outcomes),
            coalesced_waits=[h["coalesced_waits"] for h in hub_stats],
            leases_granted=[h["leases_granted"] for h in hub_stats])


def test_a_hub_killed_mid_run_loses_no_request_and_no_entry(sim, fleet, redis_server):
    paths = contents("kill", 60)
    answers = Answers(sim, paths)
    hubs = start_hubs(fleet, redis_server, 3)
    every_hub = ",".join(hub.multiaddr for hub in hubs)
    peers = start_runners(fleet, 6, lambda i: every_hub)
    load = Load(peers, answers)
    cursor = itertools.count()
    lock = threading.Lock()

    def next_path() -> str:  # each resource asked by the runners in turn, new ones each time
        with lock:
            return paths[(next(cursor) // 3) % len(paths)]

    def killer() -> None:
        load.until_answered(60)
        hubs[1].kill()  # SIGKILL: no clean-up at all
        load.until_answered(120)
        load.stop.set()

    run_parallel([killer, *[lambda i=i: load.run(i, next_path) for i in range(6)]])
    assert load.problems == []
    asked = load.asked
    upstream = sim.records()
    assert len(upstream) == len({r.path for r in upstream}), "a resource was fetched twice"
    # No entry lost: a new runner (empty local cache) finds every one in the fleet.
    late = fleet.start_peer(bootstrap=",".join(h.multiaddr for h in (hubs[0], hubs[2])))
    late.wait_ready(START)
    for path in sorted(asked):
        assert answers.check(path, get(late, path, "ghs_late")) == "hit-peer", path
    assert len(sim.records()) == len(upstream)
    stats = [node_stats(peer) for peer in [*peers, late]]
    assert_accounted(stats, len(sim.records()))
    figures("redis-hub-killed", answered=load.answered, resources=len(asked),
            upstream_calls=len(upstream),
            fleet_errors=sum(s.get("fleet_errors", 0) for s in stats))


def test_redis_stopped_and_restarted_mid_run(sim, fleet, redis_server):
    phases = {name: contents(name, 400) for name in ("before", "during", "after")}
    answers = Answers(sim, [p for paths in phases.values() for p in paths])
    hubs = start_hubs(fleet, redis_server, 3)
    every_hub = ",".join(hub.multiaddr for hub in hubs)
    peers = start_runners(fleet, 6, lambda i: every_hub)
    load = Load(peers, answers)
    phase = ["before"]
    counters = {name: itertools.count() for name in phases}
    lock = threading.Lock()

    def next_path() -> str:  # new resources all along, so there are misses in every phase
        with lock:
            name = phase[0]
            return phases[name][(next(counters[name]) // 2) % len(phases[name])]

    seen: dict[str, list[str]] = {}

    def operator() -> None:
        load.until_answered(40)
        redis_server.stop()
        phase[0] = "during"
        wait_until(lambda: all(health(h) == "degraded" for h in hubs), 120,
                   "every hub to report degraded")
        seen["degraded"] = [health(h) for h in hubs]
        load.until_answered(60)  # served while Redis is away
        redis_server.start()
        wait_until(lambda: all(health(h) == "active" for h in hubs), 120,
                   "every hub to recover")
        phase[0] = "after"
        seen["recovered"] = [health(h) for h in hubs]
        load.until_answered(60)
        load.stop.set()

    run_parallel([operator, *[lambda i=i: load.run(i, next_path) for i in range(6)]])
    assert load.problems == []
    assert seen == {"degraded": ["degraded"] * 3, "recovered": ["active"] * 3}
    hub_stats = [node_stats(hub) for hub in hubs]
    for stats in hub_stats:
        assert stats["redis_outages"] == 1 and stats["redis_recoveries"] == 1, stats
        assert stats["state_status"] == "active"
    assert_accounted([node_stats(peer) for peer in peers], len(sim.records()))
    # Shared again: what was filled after the recovery is in Redis for a new runner.
    after = sorted({r.path for r in sim.records()} & set(phases["after"]))
    assert after
    late = fleet.start_peer(bootstrap=every_hub)
    late.wait_ready(START)
    assert all(answers.check(path, get(late, path, "ghs_late")) == "hit-peer" for path in after)
    figures("redis-restarted", answered=load.answered, upstream_calls=len(sim.records()),
            degraded_seconds=[s["redis_degraded_seconds"] for s in hub_stats],
            fallback_answers=[s["fallback_answers"] for s in hub_stats])
