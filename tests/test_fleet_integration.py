"""The fleet with real processes: a hub and runner peers (libp2p on loopback) and the simulator.

Counts come from the simulator's records; runner counts from each daemon's /_p2p/stats.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

REPO = "octo/hello"


def paths(n: int) -> list[str]:
    return [f"/repos/{REPO}/contents/file{i}.txt" for i in range(n)]


def get(endpoint: str, path: str, token: str) -> requests.Response:
    return requests.get(endpoint + path, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)


def stats(node) -> dict:
    return requests.get(node.endpoint + "/_p2p/stats", timeout=10).json()


@pytest.fixture
def slow_sim():
    # 50 ms per request, like a real round trip, so runners really do overlap.
    with GitHubSimulator(SimulatorConfig(latency=0.05, rate_limit=100_000)) as sim:
        yield sim


def test_three_runners_same_50_resources_cost_50_calls(slow_sim, tmp_path):
    with LocalFleet(slow_sim.url, workdir=tmp_path) as fleet:
        fleet.start_hub()
        peers = [fleet.start_peer(wait=False) for _ in range(3)]
        for peer in peers:
            peer.wait_ready(60)
            assert peer.info["status"] == "active"
        slow_sim.reset_records()

        def runner(index: int) -> list[int]:
            token = f"ghs_runner{index}_token000"
            return [get(peers[index].endpoint, p, token).status_code for p in paths(50)]

        with concurrent.futures.ThreadPoolExecutor(3) as pool:  # all three start together
            statuses = list(pool.map(runner, range(3)))
        assert all(s == 200 for run in statuses for s in run)
        upstream = slow_sim.records()
        assert len(upstream) == 50
        assert sorted(r.path for r in upstream) == sorted(paths(50))
        per_runner = [stats(p) for p in peers]
        assert sum(s["api_calls_made"] for s in per_runner) == len(upstream)
        for s in per_runner:
            assert s["requests"] == 50
            assert s["local_hits"] + s["peer_hits"] + s["misses"] == 50
        assert sum(s["peer_hits"] for s in per_runner) == 100


def test_peer_with_wrong_secret_can_neither_connect_nor_read(slow_sim, tmp_path):
    with LocalFleet(slow_sim.url, workdir=tmp_path) as fleet:
        fleet.start_hub()
        good = fleet.start_peer()
        assert get(good.endpoint, f"/repos/{REPO}", "ghs_good").status_code == 200
        bad = fleet.start_peer(env={"GITHUB_P2P_SECRET": "a-completely-different-secret"})
        assert bad.info["status"] == "degraded"
        slow_sim.reset_records()
        resp = get(bad.endpoint, f"/repos/{REPO}", "ghs_bad")
        assert resp.status_code == 200 and resp.headers["X-GitHub-P2P-Cache"] == "miss"
        assert len(slow_sim.records()) == 1  # it had to ask GitHub itself
        assert stats(bad)["connected_peers"] == 0


def test_hub_killed_and_restarted(slow_sim, tmp_path):
    with LocalFleet(slow_sim.url, workdir=tmp_path) as fleet:
        hub = fleet.start_hub()
        hub_id = hub.info["peer_id"]
        a, b = fleet.start_peer(), fleet.start_peer()
        assert get(a.endpoint, "/repos/octo/hello/pulls", "ghs_a").status_code == 200
        hub.kill()
        # Runners keep answering straight from GitHub: no failed request.
        for i in range(10):
            assert get(b.endpoint, f"/repos/{REPO}/contents/down{i}", "ghs_b").status_code == 200
        restarted = fleet.start_hub(name=hub.name)
        assert restarted.info["peer_id"] == hub_id
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
                stats(p)["connected_peers"] == 1 for p in (a, b)):
            time.sleep(0.2)
        assert all(stats(p)["connected_peers"] == 1 for p in (a, b))
        slow_sim.reset_records()
        assert get(a.endpoint, "/repos/octo/hello/releases", "ghs_a").status_code == 200
        resp = get(b.endpoint, "/repos/octo/hello/releases", "ghs_b")
        assert resp.headers["X-GitHub-P2P-Cache"] == "hit-peer"
        assert len(slow_sim.records()) == 1
