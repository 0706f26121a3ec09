"""MCP over Streamable HTTP against real nodes: runner daemons (``/_p2p/mcp``) linked to a
blind bootstrap node, that bootstrap node (``/mcp``), and a token-protected bootstrap node that
holds the full secret and a GitHub token. Every node is a ``github-p2p`` subprocess; GitHub is
the simulator, whose records give every upstream count."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import requests
import trio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from github_p2p.core.keys import derive_network_key
from github_p2p.mcp.queue_tools import QUEUE_TOOLS
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

REPO = "/repos/octo/hello"
RUNNER_TOKENS = ("ghp_runner0token000000001", "ghp_runner1token000000001")
HUB_TOKEN = "ghp_seedhubtoken000000001"
MCP_TOKEN = "mcp-operator-token-0123456789abcdef"
FLEET_TOOLS = {"rate_limit", "fleet_status", "fleet_peers", "cache_stats"}
ALL_TOOLS = FLEET_TOOLS | {"github_get", "github_invalidate"}
RUNNER_TOOLS = ALL_TOOLS | set(QUEUE_TOOLS)  # hubs serve no queue tools
MCP_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "probe", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class World:
    sim: GitHubSimulator
    blind: NodeProcess
    runners: list[NodeProcess]
    seed: NodeProcess
    no_sdk: NodeProcess
    seeded: NodeProcess


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("mcp-fleet")
    token_file = workdir / "mcp-token"
    token_file.write_text(MCP_TOKEN + "\n")
    token_file.chmod(0o600)
    shadow = workdir / "no-mcp" / "mcp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named mcp')\n")
    with GitHubSimulator(SimulatorConfig(rate_limit=100_000)) as sim, \
            LocalFleet(sim.url, workdir=workdir) as fleet:
        network_key = derive_network_key(fleet.secret).hex()
        # Blind: the network key only (and a GitHub token it must not use for anything).
        blind = fleet.start_hub(name="blind", env={
            "GITHUB_P2P_SECRET": "", "GITHUB_P2P_NETWORK_KEY": network_key,
            "GITHUB_TOKEN": "ghp_blindhubtoken00000001"})
        runners = [fleet.start_peer(name=f"runner{i}", bootstrap=blind.multiaddr, wait=False,
                                    env={"GITHUB_TOKEN": token})
                   for i, token in enumerate(RUNNER_TOKENS)]
        seed = fleet.start_hub(name="seed", wait=False, env={"GITHUB_TOKEN": HUB_TOKEN},
                               args=["--mcp-token-file", str(token_file)])
        no_sdk = fleet.start_peer(name="nosdk", bootstrap="", wait=False,
                                  env={"PYTHONPATH": str(shadow.parent),
                                       "GITHUB_TOKEN": "ghp_nosdktoken00000000001"})
        for node in (*runners, seed, no_sdk):
            node.wait_ready(90)
        assert [r.info["status"] for r in runners] == ["active", "active"]
        seeded = fleet.start_peer(name="seeded", bootstrap=seed.multiaddr,
                                  env={"GITHUB_TOKEN": "ghp_seededrunner000000001"})
        yield World(sim, blind, runners, seed, no_sdk, seeded)


def daemon_url(node: NodeProcess) -> str:
    return node.endpoint + "/_p2p/mcp"


def hub_url(node: NodeProcess) -> str:
    return node.endpoint + "/mcp"


async def call(client: Client, name: str, **arguments):
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


def stats(node: NodeProcess) -> dict:
    return requests.get(node.endpoint + "/_p2p/stats", timeout=10).json()


async def test_two_runners_agents_on_the_same_10_paths_cost_10_calls(world):
    paths = [f"{REPO}/contents/agent{i}.txt" for i in range(10)]
    world.sim.reset_records()
    before = [stats(r)["api_calls_made"] for r in world.runners]
    answers: dict[int, list[dict]] = {}

    async def agent(index: int) -> None:
        async with Client(daemon_url(world.runners[index])) as client:
            answers[index] = [await call(client, "github_get", path=p) for p in paths]

    async with trio.open_nursery() as nursery:  # both agents at once
        for index in range(2):
            nursery.start_soon(agent, index)
    records = world.sim.records()
    assert len(records) == 10 and sorted(r.path for r in records) == sorted(paths)
    made = [stats(r)["api_calls_made"] - b for r, b in zip(world.runners, before, strict=True)]
    assert sum(made) == len(records) == 10
    for index in range(10):
        pair = sorted(answers[runner][index]["cache"] for runner in range(2))
        assert pair == ["hit-peer", "miss"]
        assert answers[0][index]["data"] == answers[1][index]["data"]
    # Each runner asked GitHub with its own token.
    assert {r.token for r in records} <= set(RUNNER_TOKENS)


async def test_every_tool_and_resource_on_a_runner_daemon(world):
    runner = world.runners[0]
    world.sim.reset_records()
    async with Client(daemon_url(runner)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == RUNNER_TOOLS
        first = await call(client, "github_get", path=f"{REPO}/releases")
        pages = await call(client, "github_get", path=f"{REPO}/issues",
                           query={"state": "all", "per_page": 25}, paginate=True)
        invalidated = await call(client, "github_invalidate", path=f"{REPO}/releases")
        again = await call(client, "github_get", path=f"{REPO}/releases")
        limit = await call(client, "rate_limit")
        status = await call(client, "fleet_status")
        peers = await call(client, "fleet_peers")
        cache = await call(client, "cache_stats")
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        status_doc = (await client.read_resource("fleet://status")).contents[0].text
    assert first["cache"] == "miss" and again["cache"] == "miss"
    assert invalidated == {"invalidated": f"{REPO}/releases"}
    assert pages["pages"] >= 2 and len(pages["data"]) > 25
    assert limit["source"] == "github" and limit["remaining"] is not None
    assert status["role"] == "runner" and status["status"] == "active"
    assert status["peer_id"] == runner.info["peer_id"] and '"active"' in status_doc
    assert peers["peer_count"] == 1 and peers["peers"][0]["connected"] is True
    assert peers["peers"][0]["peer_id"] == world.blind.info["peer_id"]
    now = stats(runner)
    assert {k: cache[k] for k in ("requests", "api_calls_made", "misses")} == {
        k: now[k] for k in ("requests", "api_calls_made", "misses")}
    assert resources == {"fleet://status", "fleet://peers"}
    assert {r.token for r in world.sim.records()} == {RUNNER_TOKENS[0]}


async def test_the_handshake_era_protocol_works_over_http(world):
    async with Client(daemon_url(world.runners[1]), mode="legacy") as client:
        assert (await call(client, "fleet_status"))["role"] == "runner"


async def test_a_blind_bootstrap_node_offers_no_github_get(world):
    world.sim.reset_records()
    async with Client(hub_url(world.blind)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("github_get", {"path": REPO})
        status = await call(client, "fleet_status")
        peers = await call(client, "fleet_peers")
        cache = await call(client, "cache_stats")
        limit = await call(client, "rate_limit")
    assert names == FLEET_TOOLS
    assert refused.is_error and "github_get" in refused.content[0].text
    assert status["role"] == "bootstrap" and status["peer_id"] == world.blind.info["peer_id"]
    assert "fleet_api_calls_made" in status and status["peer_count"] == 2
    runner_ids = {r.info["peer_id"] for r in world.runners}
    assert {p["peer_id"] for p in peers["peers"]} == runner_ids
    assert cache["role"] == "bootstrap" and cache["total_entries"] == stats(world.blind)[
        "total_entries"]
    assert limit["source"] == "none"
    assert world.sim.records() == []  # a blind hub never calls GitHub


async def test_the_seed_hub_needs_its_token_and_reads_github_with_its_own(world):
    url = hub_url(world.seed)
    bare = requests.post(url, json=MCP_INIT, headers=MCP_HEADERS, timeout=10)
    wrong = requests.post(url, json=MCP_INIT, timeout=10,
                          headers={**MCP_HEADERS, "Authorization": "Bearer not-the-token"})
    assert bare.status_code == wrong.status_code == 401
    challenge = bare.headers["www-authenticate"]
    metadata_url = f"{world.seed.endpoint}/.well-known/oauth-protected-resource/mcp"
    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata_url}"' in challenge
    metadata = requests.get(metadata_url, timeout=10).json()
    assert metadata["resource"] == url
    world.sim.reset_records()
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {MCP_TOKEN}"}) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == ALL_TOOLS
        first = await call(client, "github_get", path=REPO)
        second = await call(client, "github_get", path=REPO)
        status = await call(client, "fleet_status")
    assert first["data"]["full_name"] == "octo/hello"
    assert (first["cache"], second["cache"]) == ("miss", "hit-local")
    assert status["role"] == "bootstrap"
    # The MCP caller's bearer token never leaves the hub; GitHub saw the hub's own.
    assert [r.token for r in world.sim.records()] == [HUB_TOKEN]


async def test_the_seed_hubs_github_get_reads_the_fleets_entries(world):
    path = f"{REPO}/contents/shared-with-the-hub.txt"
    world.sim.reset_records()
    filled = requests.get(world.seeded.endpoint + path, timeout=30,
                          headers={"Authorization": "Bearer ghp_seededrunner000000001"})
    assert filled.headers["X-GitHub-P2P-Cache"] == "miss"
    url = hub_url(world.seed)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {MCP_TOKEN}"}) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        answer = await call(client, "github_get", path=path)
    assert answer["cache"] == "hit-peer"
    assert answer["data"]["sha"] == filled.json()["sha"]  # (URLs differ: each base is its own)
    assert len(world.sim.records()) == 1  # the runner's fill; the hub paid nothing


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "http://127.0.0.1:1234"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Host": "evil.example"},
    {"Host": "evil.example:80"},
])
def test_browser_and_foreign_host_requests_are_refused(world, headers):
    for url in (daemon_url(world.runners[0]), hub_url(world.blind)):
        resp = requests.post(url, json=MCP_INIT, headers={**MCP_HEADERS, **headers},
                             timeout=10)
        assert resp.status_code in (403, 421), (url, headers, resp.status_code)
    # The same request without them is served.
    ok = requests.post(daemon_url(world.runners[0]), json=MCP_INIT, headers=MCP_HEADERS,
                       timeout=10)
    assert ok.status_code == 200


def test_a_daemon_without_the_extra_says_so_and_keeps_serving(world):
    resp = requests.post(daemon_url(world.no_sdk), json=MCP_INIT, headers=MCP_HEADERS,
                         timeout=30)
    assert resp.status_code == 501
    assert "pip install 'github-p2p[mcp]'" in resp.json()["message"]
    proxied = requests.get(world.no_sdk.endpoint + REPO, timeout=30)
    assert proxied.status_code == 200 and proxied.json()["full_name"] == "octo/hello"
    log = Path(world.no_sdk.log_file).read_text()
    assert "Traceback" not in log


async def test_a_daemon_stops_cleanly_while_an_mcp_client_is_connected(tmp_path):
    with GitHubSimulator(SimulatorConfig()) as sim, \
            LocalFleet(sim.url, workdir=tmp_path) as fleet:
        daemon = fleet.start_peer(bootstrap="", env={"GITHUB_TOKEN": RUNNER_TOKENS[0]})
        for mode in ("legacy", "auto"):  # the handshake era opens more than one request
            async with Client(daemon_url(daemon), mode=mode) as client:
                await call(client, "github_get", path=REPO)
                if mode == "auto":
                    # SIGTERM, then SIGKILL after 10 s: a clean exit is 0 and leaves no trace.
                    assert await trio.to_thread.run_sync(daemon.stop) == 0
        log = Path(daemon.log_file).read_text()
    assert "Traceback" not in log and "ERROR" not in log
