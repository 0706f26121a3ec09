"""The daemons as users run them: CLI flags, ready files, stop/stats, signals, several hubs."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from github_p2p import GitHubClient, Outcome
from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.testing.localfleet import LocalFleet, free_port

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "github_p2p.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_address_prints_a_stable_multiaddr(tmp_path):
    ident = tmp_path / "id.key"
    first = cli("address", "--identity", str(ident), "--public-ip", "203.0.113.7")
    second = cli("address", "--identity", str(ident), "--public-ip", "203.0.113.7",
                 "--port", "9100")
    assert first.returncode == 0 and first.stdout == second.stdout
    line = first.stdout.strip()
    assert line.startswith("/ip4/203.0.113.7/tcp/9100/p2p/12D3Koo")
    assert oct(ident.stat().st_mode & 0o777) == "0o600"


def test_local_only_peer_stats_stop_and_from_env(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        peer = fleet.start_peer(bootstrap="")
        assert peer.info["status"] == "local-only" and peer.info["peer_id"]
        env = dict(os.environ, GITHUB_P2P_ENDPOINT=peer.endpoint, GITHUB_TOKEN="ghs_fromenv")
        gh = GitHubClient.from_env(env)
        assert gh.get("/repos/octo/hello")["name"] == "hello"
        assert gh.request("GET", "/repos/octo/hello").outcome is Outcome.HIT_LOCAL
        mine = gh.stats()
        assert (mine["requests"], mine["local_hits"], mine["api_calls_made"]) == (2, 1, 1)
        out = cli("stats", "--json", env=env)
        daemon = json.loads(out.stdout)
        assert daemon["api_calls_made"] == 1 == len(sim.records())
        assert daemon["status"] == "local-only"
        assert cli("stop", env=env).returncode == 0
        assert peer.process.wait(10) == 0


def test_sigterm_and_max_lifetime_stop_cleanly(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        peer = fleet.start_peer(bootstrap="")
        peer.process.send_signal(signal.SIGTERM)
        assert peer.process.wait(15) == 0
    ready = tmp_path / "ready.json"
    started = time.monotonic()
    out = cli("peer", "--bootstrap", "", "--port", str(free_port()), "--http-port",
              str(free_port()), "--listen-host", "127.0.0.1", "--cache-dir", str(tmp_path / "c"),
              "--ready-file", str(ready), "--max-lifetime", "3",
              env=dict(os.environ, GITHUB_API_URL=sim.url), timeout=60)
    assert out.returncode == 0, out.stderr
    assert 3 <= time.monotonic() - started < 30
    assert json.loads(ready.read_text())["status"] == "local-only"


def test_unreachable_bootstrap_is_degraded_not_fatal(sim, tmp_path):
    peer_id = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
    dead = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{peer_id}"
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        peer = fleet.start_peer(bootstrap=dead)
        assert peer.info["status"] == "degraded"
        resp = requests.get(peer.endpoint + "/repos/octo/hello",
                            headers={"Authorization": "Bearer ghs_x"}, timeout=30)
        assert resp.status_code == 200 and resp.headers["X-GitHub-P2P-Cache"] == "miss"


def test_two_hubs_split_ids_and_fail_over(sim, tmp_path):
    paths = [f"/repos/octo/hello/contents/two{i}" for i in range(40)]
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        hub_a, hub_b = fleet.start_hub(), fleet.start_hub()
        a, b = fleet.start_peer(), fleet.start_peer()
        for path in paths:
            requests.get(a.endpoint + path, headers={"Authorization": "Bearer ghs_a"}, timeout=30)
        leases = [requests.get(h.endpoint + "/_p2p/stats", timeout=5).json()["leases"]
                  for h in (hub_a, hub_b)]
        assert sum(leases) == 40 and min(leases) >= 5  # both hubs hold a share
        hub_a.kill()
        sim.reset_records()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(
                lambda args: requests.get(args[0].endpoint + args[1], timeout=60,
                                          headers={"Authorization": f"Bearer {args[2]}"}),
                [(p, f"/repos/octo/hello/contents/after{i}", t)
                 for i in range(20) for p, t in ((a, "ghs_a"), (b, "ghs_b"))]))
        assert all(r.status_code == 200 for r in results)
        # Hub B now takes every id, and still coalesces: one upstream call per resource.
        assert len(sim.records()) == 20


def test_invalidate_endpoint_forgets_a_path_written_elsewhere(sim, tmp_path):
    from github_p2p.cache.client import EndpointBackend

    path = "/repos/octo/hello/issues/3"
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        peer = fleet.start_peer(bootstrap="")
        backend = EndpointBackend(peer.endpoint, "ghs_writer")
        gh = GitHubClient(backend)
        gh.get(path)
        assert gh.request("GET", path).outcome is Outcome.HIT_LOCAL
        # A write that bypassed the daemon (the real gh talking to GitHub itself).
        requests.patch(sim.url + path, json={"title": "changed elsewhere"},
                       headers={"Authorization": "Bearer ghs_writer"}, timeout=10)
        backend.invalidate(path)
        fresh = gh.request("GET", path)
        assert fresh.outcome is Outcome.MISS
        assert json.loads(fresh.body)["title"] == "changed elsewhere"
        bad = requests.post(peer.endpoint + "/_p2p/invalidate", json={"path": "no-slash"},
                            headers={CONTROL_HEADER: "1"}, timeout=10)
        assert bad.status_code == 400
