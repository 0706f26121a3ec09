"""GitHub OIDC admission end to end (issue 12, finding 2): a hub started with
``--oidc-audience``, runners as real processes that request their token from the simulator's
Actions runtime, and the simulator's issuer whose published keys the hub verifies against.

The scenario the finding describes: several repositories of one organisation share one fleet
secret. A runner of ``octo/other`` that sets ``GITHUB_REPOSITORY=octo/hello`` seals and
addresses entries exactly like a runner of ``octo/hello``. Without OIDC that is one trust
domain and it reads ``octo/hello``'s entries (the first test says so); with OIDC the hub binds
each connection to the repository its token names, and the same ids land in another space.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import requests
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.core.keys import derive_network_key
from github_p2p.nodes.oidc import OidcRequest, OidcTokenSource
from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import HostSettings, RunningHost, dial, running_host
from github_p2p.p2p.messages import Entry, Error, Get, Hello, NotFound, Ok, Put
from github_p2p.p2p.wire import PROTOCOL_ID
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "one-org-secret-shared-by-repos"
AUD = "github-p2p.example.org"
HOME, OTHER = "octo/hello", "octo/other"
P1 = "/repos/octo/hello/contents/README.md"
P2 = "/repos/octo/hello/contents/only-other-fetched"


@pytest.fixture
def sim() -> Any:
    with GitHubSimulator(SimulatorConfig(rate_limit=100_000)) as simulator:
        simulator.set_resource(P1, {"name": "README.md", "v": 1})
        simulator.set_resource(P2, {"name": "x", "v": 1})
        yield simulator


def get(node: NodeProcess, path: str, token: str) -> requests.Response:
    resp = requests.get(node.endpoint + path, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)
    assert resp.status_code == 200, resp.text
    return resp


def cache(node: NodeProcess, path: str, token: str) -> str:
    return get(node, path, token).headers["X-GitHub-P2P-Cache"]


def job_env(sim: GitHubSimulator, admitted_for: str, *, audience: str = AUD,
            claims_to_be: str = HOME, **options: Any) -> dict[str, str]:
    """A runner of ``admitted_for`` (its token says so) that sets ``GITHUB_REPOSITORY``."""
    return {**sim.oidc_job(admitted_for, **options), "GITHUB_P2P_OIDC_AUDIENCE": audience,
            "GITHUB_REPOSITORY": claims_to_be}


def oidc_hub(fleet: LocalFleet, sim: GitHubSimulator) -> NodeProcess:
    return fleet.start_hub(args=["--oidc-audience", AUD, "--oidc-issuer", sim.oidc_issuer])


def peers_of(node: NodeProcess) -> list[dict[str, Any]]:
    return list(requests.get(node.endpoint + "/_p2p/peers", timeout=10).json()["peers"])


def test_without_oidc_one_secret_is_one_trust_domain(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET, repository=HOME) as fleet:
        fleet.start_hub()
        home = fleet.start_peer()
        assert cache(home, P1, "ghs_home") == "miss"
        # A runner of octo/other with the same secret claims octo/hello: nothing stops it.
        other = fleet.start_peer(env={"GITHUB_REPOSITORY": HOME})
        assert cache(other, P1, "ghs_other") == "hit-peer"


def test_a_runner_admitted_for_another_repository_reads_and_writes_nothing_of_ours(
        sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET, repository=HOME) as fleet:
        hub = oidc_hub(fleet, sim)
        home = fleet.start_peer(env=job_env(sim, HOME))
        assert home.info["status"] == "active"
        assert cache(home, P1, "ghs_home") == "miss"
        assert cache(fleet.start_peer(env=job_env(sim, HOME)), P1, "ghs_home2") == "hit-peer"

        # Admitted for octo/other, with the fleet secret and GITHUB_REPOSITORY=octo/hello.
        intruder = fleet.start_peer(env=job_env(sim, OTHER))
        assert intruder.info["status"] == "active"
        assert cache(intruder, P1, "ghs_other") == "miss"  # cannot read
        assert cache(intruder, P2, "ghs_other") == "miss"  # and shares what it fetched...
        invalidated = requests.post(intruder.endpoint + "/_p2p/invalidate", json={"path": P1},
                                    headers={CONTROL_HEADER: "1"}, timeout=30)
        assert invalidated.status_code == 200  # ...and deletes, in its own space only

        later = fleet.start_peer(env=job_env(sim, HOME))
        assert cache(later, P2, "ghs_later") == "miss"  # nothing the intruder put
        assert cache(later, P1, "ghs_later") == "hit-peer"  # nor deleted

        listed = {p["runner_name"]: p["repository"] for p in peers_of(hub)}
        assert listed[intruder.name] == OTHER and listed[home.name] == HOME
        hub_stats = requests.get(hub.endpoint + "/_p2p/stats", timeout=10).json()
        assert hub_stats["oidc_admitted"] == 4 and hub_stats["oidc_refused"] == 0
        # Upstream: P1 by home and by the intruder, P2 by the intruder and by later.
        assert sim.upstream_count(P1) == 2 and sim.upstream_count(P2) == 2


CASES: list[tuple[str, Mapping[str, Any], str]] = [
    ("wrong audience", {"audience": "someone-else.example.org"}, "another audience"),
    ("expired", {"lifetime": -120}, "expired"),
    ("bad signature", {"foreign_key": True}, "signature does not verify"),
    ("other issuer", {"issuer": "https://token.actions.githubusercontent.com"},
     "another issuer"),
]


def test_runners_without_a_valid_token_are_refused_and_say_why(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET, repository=HOME) as fleet:
        hub = oidc_hub(fleet, sim)
        refused: list[tuple[NodeProcess, str]] = []
        for _, options, reason in CASES:
            refused.append((fleet.start_peer(env=job_env(sim, HOME, **options)), reason))
        # No GITHUB_P2P_OIDC_AUDIENCE at all: no token to present.
        refused.append((fleet.start_peer(), "none was presented"))
        for runner, reason in refused:
            assert runner.info["status"] == "degraded", runner.name
            (link,) = peers_of(runner)
            assert not link["connected"] and reason in link["last_error"], link
            log = runner.log_file.read_text()
            assert "not admitted by hub" in log and reason in log
            assert "eyJ" not in log  # no token (a JWT starts so) ever reaches a log
            assert cache(runner, P1, "ghs_refused") == "miss"  # still serves, from GitHub
        hub_stats = requests.get(hub.endpoint + "/_p2p/stats", timeout=10).json()
        assert hub_stats["oidc_refused"] >= len(refused) and hub_stats["oidc_admitted"] == 0
        assert hub_stats["connected_peers"] == 0
        assert "eyJ" not in hub.log_file.read_text()


def test_a_runner_renews_its_token_when_it_reconnects(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET, repository=HOME) as fleet:
        hub = oidc_hub(fleet, sim)
        # Tokens that live less than the renewal margin (60 s): each connection needs a new one.
        runner = fleet.start_peer(env=job_env(sim, HOME, lifetime=45))
        assert runner.info["status"] == "active" and sim.oidc.tokens_issued == 1
        hub.stop()
        fleet.start_hub(name=hub.name, args=["--oidc-audience", AUD,
                                             "--oidc-issuer", sim.oidc_issuer])
        assert wait_until(lambda: peers_of(runner)[0]["connected"], 60)
        assert sim.oidc.tokens_issued == 2


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` (a state, not a duration) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


async def _open(me: RunningHost, hub: NodeProcess) -> MessageChannel:
    peer_id = await dial(me, hub.multiaddr, 20)
    with trio.fail_after(20):
        stream = await me.host.new_stream(ID.from_base58(peer_id), [TProtocol(PROTOCOL_ID)])
    return MessageChannel(stream)


async def _exchange(channel: MessageChannel, message: Any) -> Any:
    with trio.fail_after(20):
        await channel.send(message)
        return await channel.receive()


def test_a_member_on_the_wire_gets_nothing_before_admission_and_only_its_scope_after(
        sim, tmp_path):
    def token(repository: str) -> str:
        env = sim.oidc_job(repository)
        return OidcTokenSource(OidcRequest(AUD, env["ACTIONS_ID_TOKEN_REQUEST_URL"],
                                           env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])).token()

    home_token, other_token = token(HOME), token(OTHER)
    ident, envelope = os.urandom(32), os.urandom(200)

    async def scenario(hub: NodeProcess) -> None:
        async with running_host(HostSettings(psk=derive_network_key(SECRET))) as me:
            stranger = await _open(me, hub)
            refused = await _exchange(stranger, Get(1, ident))
            assert isinstance(refused, Error) and refused.code == "unauthorized"
            refused = await _exchange(stranger, Hello(2, "runner", "X64", "s", "1"))
            assert isinstance(refused, Error) and "none was presented" in refused.message
            with trio.fail_after(20):
                assert await stranger.receive() is None  # and the stream is over

            other = await _open(me, hub)
            assert isinstance(await _exchange(
                other, Hello(3, "runner", "X64", "o", "1", other_token)), Ok)
            assert isinstance(await _exchange(other, Put(4, ident, envelope, 600, 600)), Ok)
            mine = await _exchange(other, Get(5, ident))
            assert isinstance(mine, Entry) and mine.entry_id == ident
            assert mine.envelope == envelope

            home = await _open(me, hub)
            assert isinstance(await _exchange(
                home, Hello(6, "runner", "X64", "h", "1", home_token)), Ok)
            theirs = await _exchange(home, Get(7, ident))
            assert isinstance(theirs, NotFound) and theirs.entry_id == ident
            for channel in (other, home):
                await channel.close()

    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET, repository=HOME) as fleet:
        hub = oidc_hub(fleet, sim)
        trio.run(scenario, hub)
        assert "eyJ" not in hub.log_file.read_text()


async def test_the_hubs_own_mcp_reads_in_its_repositorys_space(sim, tmp_path):
    """A hub holding the secret and a token answers MCP ``github_get`` for its own
    repository: on an OIDC hub it reads and shares in that repository's space, like an
    admitted runner of it (before: its ids were unmapped and met no runner's)."""
    from mcp import Client

    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET, repository=HOME) as fleet:
        hub = fleet.start_hub(args=["--oidc-audience", AUD, "--oidc-issuer", sim.oidc_issuer],
                              env={"GITHUB_TOKEN": "ghp_hubowntoken0000000001"})
        home = fleet.start_peer(env=job_env(sim, HOME))
        assert cache(home, P1, "ghs_home") == "miss"
        async with Client(hub.endpoint + "/mcp") as client:
            result = await client.call_tool("github_get", {"path": P1})
            assert not result.is_error, result.content
            assert result.structured_content["cache"] == "hit-peer"
            other = await client.call_tool("github_get", {"path": P2})
            assert other.structured_content["cache"] == "miss"
        assert cache(fleet.start_peer(env=job_env(sim, HOME)), P2, "ghs_late") == "hit-peer"
        assert sim.upstream_count(P1) == 1 and sim.upstream_count(P2) == 1
