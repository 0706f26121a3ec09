"""The registry with real processes: a bootstrap node and a runner peer (libp2p on loopback)
announce themselves in issue comments on the simulator, the runner finds the hub there with no
MCP_P2P_BOOTSTRAP_PEERS at all, and both withdraw on a clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from github_p2p.core.keys import derive_network_key
from github_p2p.registry import RegistryRecord, registry_keys
from github_p2p.registry.record import comment_body, seal_record
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.simulator import GitHubSimulator

pytestmark = pytest.mark.slow

REPO = "octo/hello"
COMMENTS = f"/repos/{REPO}/issues/1/comments"
SECRET = "registry-fleet-secret-0001"
HUB_TOKEN = "ghp_hubtoken000001"
PEER_TOKEN = "ghp_peertoken00001"


def by(sim: GitHubSimulator, token: str) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.records() if r.token == token]


def comment(sim: GitHubSimulator, body: str) -> None:
    resp = requests.post(sim.url + COMMENTS, json={"body": body}, timeout=10,
                         headers={"Authorization": "Bearer ghp_bystander"})
    assert resp.status_code == 201


def test_runner_finds_the_hub_through_the_registry_issue(sim: GitHubSimulator,
                                                             tmp_path: Path) -> None:
    keys = registry_keys(derive_network_key(SECRET))
    now = time.time()
    gone = RegistryRecord("12D3KooWGone", ("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGone",), "runner",
                          "X64", "crashed-runner", now - 7200, now - 7200,
                          now - 3600)
    comment(sim, comment_body(seal_record(keys, gone)))  # a node that crashed an hour ago
    comment(sim, comment_body(seal_record(registry_keys(bytes(32)), gone)))  # forged
    comment(sim, "Please keep this issue open, it is our fleet's registry.")
    sim.reset_records()
    with LocalFleet(sim.url, secret=SECRET, repository=REPO, workdir=tmp_path,
                    extra_env={"GITHUB_TOKEN": HUB_TOKEN,
                               "GITHUB_P2P_REGISTRY_ISSUE": "1"}) as fleet:
        hub = fleet.start_hub(timeout=60)
        # Before it said ready, the hub read the registry, announced itself, pruned the dead.
        assert by(sim, HUB_TOKEN) == [("GET", COMMENTS), ("POST", COMMENTS),
                                      ("DELETE", f"/repos/{REPO}/issues/comments/1000000001")]
        hub_stats = requests.get(hub.endpoint + "/_p2p/stats", timeout=10).json()
        assert hub_stats["registry_api_calls"] == 3 and hub_stats["registry_pruned"] == 1
        assert hub_stats["registry_forged"] == 1

        # The runner knows no bootstrap address: the registry tells it (the first heartbeat
        # is over before it says it is ready, so it starts active).
        peer = fleet.start_peer(bootstrap="", env={"GITHUB_TOKEN": PEER_TOKEN}, timeout=60)
        assert peer.info["status"] == "active"
        links = requests.get(peer.endpoint + "/_p2p/peers", timeout=10).json()["peers"]
        assert [(p["multiaddr"], p["connected"]) for p in links] == [(hub.multiaddr, True)]
        stats = requests.get(peer.endpoint + "/_p2p/stats", timeout=10).json()
        assert by(sim, PEER_TOKEN) == [("GET", COMMENTS), ("POST", COMMENTS)]
        # Registry calls go through the runner's own cache and are in its statistics.
        assert stats["registry_api_calls"] == stats["api_calls_made"] == 2
        assert stats["registry_live"] == 1 and stats["registry_forged"] == 1

        listed = subprocess.run(
            [sys.executable, "-m", "github_p2p.cli", "registry", "list", "--issue", "1"],
            env={**fleet.env(), "GITHUB_TOKEN": "ghp_operator0001"}, capture_output=True,
            text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        records = json.loads(listed.stdout)
        assert sorted((r["role"], r["peer_id"]) for r in records) == sorted(
            [("bootstrap", hub.info["peer_id"]), ("runner", peer.info["peer_id"])])
        assert "forged" in listed.stderr
        posted = requests.get(sim.url + COMMENTS, timeout=10).json()
        # No address in what was posted (the API's own URLs of the comments aside).
        assert "127.0.0.1" not in " ".join(comment["body"] for comment in posted)

        # A clean stop turns the node's own comment into its withdrawal (pruned later).
        assert peer.stop() == 0
        assert by(sim, PEER_TOKEN)[-1][0] == "PATCH"
        assert hub.stop() == 0
        assert by(sim, HUB_TOKEN)[-1][0] == "PATCH"
        listed = subprocess.run(
            [sys.executable, "-m", "github_p2p.cli", "registry", "list", "--issue", "1"],
            env={**fleet.env(), "GITHUB_TOKEN": "ghp_operator0001",
                 "GITHUB_P2P_CACHE_DIR": str(tmp_path / "uncached")},  # not the listing above
            capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and json.loads(listed.stdout) == []
        assert "2 withdrawals" in listed.stderr
    left = requests.get(sim.url + COMMENTS, timeout=10).json()
    assert len(left) == 4 and "keep this issue open" in left[1]["body"]
    assert os.path.isdir(tmp_path)
