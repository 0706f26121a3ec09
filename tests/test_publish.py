"""``bootstrap --publish-secret``: sealing, the two REST calls, and the whole path end to end.

The simulator holds a real Curve25519 key pair and opens what it is sent with a sealed box, so
``sim.secret_value`` proves the round trip; the end-to-end test then starts a runner with the
published value as its only configuration and checks that it joins the hub.
"""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
import requests
from nacl.public import PrivateKey, SealedBox

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.core.keys import derive_network_key
from github_p2p.errors import ConfigError, GitHubHTTPError, GitHubP2PError
from github_p2p.nodes.hub.publish import (
    SECRET_NAME,
    announced_addresses,
    bootstrap_secret_value,
    parse_repository,
    publish_secret,
    publisher_from_env,
    seal,
)
from github_p2p.testing.localfleet import LocalFleet, NodeProcess, free_port

PEER = "12D3KooWLSGfDEL8KTc2yFQRXJN97RrfLUHojkJFib9PL3E4CPsL"
OTHER = "12D3KooWHgGnK9B87rGfM5EqyCvatTPFJjdzRZGSHvtFNGo9j7g3"


def client(sim, token: str | None = "ghp_operator_token") -> GitHubClient:
    return GitHubClient.in_process(ClientSettings(api_url=sim.url, token=token))


# --- pure parts ------------------------------------------------------------------------------


def test_seal_opens_with_the_private_key_only() -> None:
    key = PrivateKey.generate()
    public = base64.b64encode(bytes(key.public_key)).decode()
    sealed = seal(public, "/ip4/203.0.113.7/tcp/9100/p2p/X")
    assert SealedBox(key).decrypt(base64.b64decode(sealed)) == b"/ip4/203.0.113.7/tcp/9100/p2p/X"
    assert seal(public, "v") != seal(public, "v")  # ephemeral sender key each time
    with pytest.raises(GitHubP2PError):
        seal("not base64!", "v")
    with pytest.raises(GitHubP2PError):
        seal(base64.b64encode(b"short").decode(), "v")


@pytest.mark.parametrize("text", ["octo/hello", "a-b/c.d_e", " octo/hello "])
def test_repository_names(text: str) -> None:
    assert parse_repository(text) == tuple(text.strip().split("/"))


@pytest.mark.parametrize("text", ["octo", "octo/", "/hello", "a/b/c", "octo/..", "-x/y",
                                  "octo/hel lo", "o/" + "r" * 101])
def test_bad_repository_names(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_repository(text)


def test_only_the_public_addresses_are_published_sorted_with_the_other_nodes() -> None:
    addrs = [f"/ip4/203.0.113.7/tcp/9100/p2p/{PEER}", f"/ip4/127.0.0.1/tcp/9100/p2p/{PEER}"]
    own = announced_addresses(addrs, "203.0.113.7")
    assert own == addrs[:1]
    assert announced_addresses(addrs, "198.51.100.1") == []
    other = f"/ip4/198.51.100.9/tcp/9100/p2p/{OTHER}"
    value = bootstrap_secret_value(own, [other, other])
    assert value == ",".join(sorted([addrs[0], other]))
    # Each of two hubs that knows the other publishes exactly the same value.
    assert bootstrap_secret_value([other], own) == value
    with pytest.raises(ConfigError):
        bootstrap_secret_value([])
    with pytest.raises(ConfigError):
        bootstrap_secret_value(["/ip4/1.2.3.4/tcp/9100"])


def test_publisher_checks_its_configuration_before_the_hub_starts() -> None:
    env = {"GITHUB_TOKEN": "ghp_x", "GITHUB_API_URL": "http://127.0.0.1:9"}
    with pytest.raises(ConfigError, match="--public-ip"):
        publisher_from_env("octo/hello", None, env)
    with pytest.raises(ConfigError, match="IP address"):
        publisher_from_env("octo/hello", "hub.example.com", env)
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        publisher_from_env("octo/hello", "203.0.113.7", {"GITHUB_API_URL": env["GITHUB_API_URL"]})
    with pytest.raises(ConfigError, match="OWNER/REPO"):
        publisher_from_env("octo", "203.0.113.7", env)
    with pytest.raises(ConfigError, match="bootstrap peer"):
        publisher_from_env("octo/hello", "203.0.113.7", {**env, "MCP_P2P_BOOTSTRAP_PEERS": "x"})


# --- against the simulator -------------------------------------------------------------------


def test_publish_creates_then_updates_the_sealed_secret(sim) -> None:
    value = f"/ip4/203.0.113.7/tcp/9100/p2p/{PEER}"
    with client(sim) as gh:
        first = publish_secret(gh, "octo/hello", value)
        assert (first.repository, first.name, first.created) == ("octo/hello", SECRET_NAME, True)
        assert sim.secret_value("octo/hello", SECRET_NAME) == value
        second = publish_secret(gh, "octo/hello", value + "," + value.replace("203", "198"))
    assert second.created is False
    assert sim.secret_value("octo/hello", SECRET_NAME) == value + "," + value.replace("203", "198")
    calls = [(r.method, r.path) for r in sim.records()]
    key_path = "/repos/octo/hello/actions/secrets/public-key"
    secret_path = f"/repos/octo/hello/actions/secrets/{SECRET_NAME}"
    assert calls == [("GET", key_path), ("PUT", secret_path)] * 2  # the key is never cached


def test_publish_without_a_token_is_refused_with_a_hint(sim) -> None:
    with client(sim, token=None) as gh, pytest.raises(GitHubHTTPError) as info:
        publish_secret(gh, "octo/hello", f"/ip4/203.0.113.7/tcp/9100/p2p/{PEER}")
    assert info.value.status == 401 and "Secrets: write" in str(info.value)
    assert sim.secret_value("octo/hello", SECRET_NAME) is None


def test_publisher_reports_failure_without_raising(sim) -> None:
    env = {"GITHUB_TOKEN": "ghp_x", "GITHUB_API_URL": sim.url}
    publish = publisher_from_env("octo/hello", "203.0.113.7", env)
    # No address on the public IP: nothing to publish, said in the ready file, hub goes on.
    out = publish([f"/ip4/127.0.0.1/tcp/9100/p2p/{PEER}"])
    assert out["secret"]["published"] is False and "no address" in out["secret"]["error"]
    out = publish([f"/ip4/203.0.113.7/tcp/9100/p2p/{PEER}"])
    assert out["secret"] == {"repository": "octo/hello", "name": SECRET_NAME, "created": True,
                             "addresses": 1, "published": True}


# --- end to end: the CLI, a real hub, a runner configured only by the secret ------------------


@pytest.mark.slow
def test_bootstrap_publishes_its_address_and_a_runner_joins_with_it(sim, tmp_path) -> None:
    """``address``, then ``bootstrap --publish-secret``; a runner needs nothing but the secret."""
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        hub_dir = tmp_path / "hub"
        hub_dir.mkdir()
        port = free_port()
        # As docs/bootstrap-node.md says: the hub gets the network key, never the secret.
        env = fleet.env(GITHUB_TOKEN="ghp_operator_token",
                        GITHUB_P2P_NETWORK_KEY=derive_network_key(fleet.secret).hex())
        del env["GITHUB_P2P_SECRET"]
        # The operator's first step: the address for the secret, from the identity file alone.
        printed = subprocess.run(
            [sys.executable, "-m", "github_p2p.cli", "address", "--identity",
             str(hub_dir / "identity.key"), "--port", str(port), "--public-ip", "127.0.0.1"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()
        assert len(printed) == 1 and printed[0].startswith(f"/ip4/127.0.0.1/tcp/{port}/p2p/")

        ready = hub_dir / "ready.json"
        log = hub_dir / "node.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "github_p2p.cli", "bootstrap", "--listen-host",
                 "127.0.0.1", "--port", str(port), "--http-port", str(free_port()),
                 "--cache-dir", str(hub_dir / "cache"), "--identity",
                 str(hub_dir / "identity.key"), "--public-ip", "127.0.0.1",
                 "--publish-secret", "octo/hello", "--ready-file", str(ready)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )
        hub = NodeProcess("hub", process, ready, log)
        fleet.hubs.append(hub)  # stopped by the fleet
        info = hub.wait_ready(60)
        assert info["secret"] == {"repository": "octo/hello", "name": SECRET_NAME,
                                  "created": True, "addresses": 1, "published": True}
        value = sim.secret_value("octo/hello", SECRET_NAME)
        assert value == printed[0] == info["multiaddrs"][0]
        assert "updated" not in log.read_text() and "created secret" in log.read_text()

        runner = fleet.start_peer(bootstrap=value, timeout=60)
        assert runner.info["status"] == "active"
        peers = requests.get(hub.endpoint + "/_p2p/peers", timeout=10).json()["peers"]
        assert [p["peer_id"] for p in peers] == [runner.info["peer_id"]]
