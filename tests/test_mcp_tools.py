"""Every MCP tool and resource with the SDK's real client, in memory, over real engines and a
real (not running) hub; GitHub is the simulator, whose records give every count."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from github_p2p.cache.client import EngineBackend, GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.core.ratelimit import RetrySettings
from github_p2p.mcp.adapters import EngineReader, EngineView, ViewAdapter
from github_p2p.mcp.server import build_server
from github_p2p.mcp.tools import NodeTools
from github_p2p.nodes.hub.service import HubService, HubSettings
from github_p2p.testing.localfleet import free_port

TOKEN = "ghp_nodeowntoken000000001"
REPO = "/repos/octo/hello"
READ_TOOLS = {"github_get", "github_invalidate"}
FLEET_TOOLS = {"rate_limit", "fleet_status", "fleet_peers", "cache_stats"}


@pytest.fixture
def engine(sim, tmp_path):
    client = GitHubClient.in_process(ClientSettings(
        api_url=sim.url, token=TOKEN, scope="octo/hello", cache_dir=tmp_path / "cache",
        retry=RetrySettings(max_retries=1, backoff_base=0.01)))
    yield client.backend.engine
    client.close()


@pytest.fixture
def node_server(engine):
    return build_server([NodeTools(EngineView(engine), EngineReader(engine, TOKEN))])


@pytest.fixture
def hub(tmp_path):
    return HubService(HubSettings(cache_dir=tmp_path / "hub"))


def blind_server(hub):
    return build_server([NodeTools(ViewAdapter(hub))])


async def call(client: Client, name: str, **arguments):
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def error(client: Client, name: str, **arguments) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error
    return result.content[0].text


async def test_a_reading_node_lists_every_tool_and_a_blind_hub_no_github_get(node_server, hub):
    async with Client(node_server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == READ_TOOLS | FLEET_TOOLS
        assert tools["github_get"].annotations.read_only_hint is True
        assert tools["github_get"].input_schema["required"] == ["path"]
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert resources == {"fleet://status", "fleet://peers"}
    async with Client(blind_server(hub)) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == FLEET_TOOLS


async def test_github_get_asks_github_once_with_the_nodes_own_token(node_server, sim):
    async with Client(node_server) as client:
        first = await call(client, "github_get", path=REPO)
        second = await call(client, "github_get", path="repos/octo/hello")
    assert first["data"]["full_name"] == "octo/hello" and first["status"] == 200
    assert (first["cache"], first["upstream_calls"]) == ("miss", 1)
    assert (second["cache"], second["upstream_calls"]) == ("hit-local", 0)
    assert second["data"] == first["data"]
    records = sim.records()
    assert [(r.path, r.token) for r in records] == [(REPO, TOKEN)]
    assert first["rate_limit_remaining"] == 4999


async def test_github_get_merges_the_query_argument_with_an_inline_query(node_server, sim):
    async with Client(node_server) as client:
        answer = await call(client, "github_get", path=f"{REPO}/issues?per_page=2",
                            query={"state": "closed", "page": 2})
    assert len(answer["data"]) == 2
    [record] = sim.records()
    assert record.path == f"{REPO}/issues"
    assert sorted(record.query.split("&")) == ["page=2", "per_page=2", "state=closed"]


async def test_github_get_accepts_an_absolute_url_under_the_api_base(node_server, sim):
    async with Client(node_server) as client:
        answer = await call(client, "github_get", path=f"{sim.url}{REPO}")
    assert answer["path"] == REPO and answer["data"]["full_name"] == "octo/hello"


async def test_github_get_paginates_every_page_or_stops_at_max_pages(node_server, engine, sim):
    expected = list(GitHubClient(EngineBackend(engine, TOKEN)).paginate(
        f"{REPO}/issues", params={"state": "all", "per_page": 7}))
    sim.reset_records()
    async with Client(node_server) as client:
        some = await call(client, "github_get", path=f"{REPO}/issues",
                          query={"state": "all", "per_page": 7}, paginate=True, max_pages=2)
        every = await call(client, "github_get", path=f"{REPO}/issues",
                           query={"state": "all", "per_page": 7}, paginate=True, max_pages=50)
    assert some["pages"] == 2 and some["truncated"] is True and some["data"] == expected[:14]
    assert every["truncated"] is False and every["data"] == expected and len(expected) > 14
    assert set(every["cache"]) == {"hit-local"}  # the listing above filled every page
    assert every["upstream_calls"] == 0 and len(sim.records()) == 0


async def test_github_get_paginates_with_100_per_page_by_default(node_server, sim):
    async with Client(node_server) as client:
        answer = await call(client, "github_get", path=f"{REPO}/issues", paginate=True)
    assert answer["pages"] == 1 and answer["cache"] == ["miss"]
    assert sim.records()[0].query == "per_page=100"


async def test_errors_are_tool_errors_with_a_clear_message(node_server, sim):
    async with Client(node_server) as client:
        assert "404" in await error(client, "github_get", path=f"{REPO}/issues/999999")
        for bad in (f"{REPO}/../../user", f"{REPO}/%2e%2e/x", "/repos\\octo", "/repos/a\nb"):
            assert "refused path" in await error(client, "github_get", path=bad)
        assert "only paths of this node's API" in await error(
            client, "github_get", path="https://example.com/repos/octo/hello")
        assert "max_pages" in await error(client, "github_get", path=REPO, paginate=True,
                                          max_pages=0)
        assert "refused path" in await error(client, "github_invalidate", path="/a/../b")
        assert "validation error" in await error(client, "github_get", path=7)
        # The node still answers afterwards.
        assert (await call(client, "github_get", path=REPO))["status"] == 200
    assert all(r.path in (f"{REPO}/issues/999999", REPO) for r in sim.records())


async def test_github_unreachable_is_a_tool_error_not_a_crash(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    client = GitHubClient.in_process(ClientSettings(
        api_url=dead, token=TOKEN, cache_dir=tmp_path / "c",
        retry=RetrySettings(max_retries=0, backoff_base=0.01)))
    engine = client.backend.engine
    server = build_server([NodeTools(EngineView(engine), EngineReader(engine, TOKEN))])
    try:
        async with Client(server) as mcp_client:
            assert "unreachable" in await error(mcp_client, "github_get", path=REPO)
            limit = await call(mcp_client, "rate_limit")
            assert limit["source"] == "last-seen" and limit["remaining"] is None
            assert "did not answer" in limit["message"]
    finally:
        client.close()


async def test_github_invalidate_makes_the_next_get_ask_github_again(node_server, sim):
    async with Client(node_server) as client:
        await call(client, "github_get", path=f"{REPO}/releases")
        assert (await call(client, "github_get", path=f"{REPO}/releases"))["cache"] == "hit-local"
        done = await call(client, "github_invalidate", path=f"{REPO}/releases")
        again = await call(client, "github_get", path=f"{REPO}/releases")
    assert done == {"invalidated": f"{REPO}/releases"}
    assert again["cache"] != "hit-local" and again["upstream_calls"] == 1
    assert len(sim.records()) == 2


async def test_rate_limit_asks_github_for_free_and_a_blind_hub_asks_nobody(node_server, hub,
                                                                           sim):
    async with Client(node_server) as client:
        limit = await call(client, "rate_limit")
    assert limit["source"] == "github" and limit["limit"] == 5000
    assert limit["remaining"] == 5000 and limit["resources"]["core"]["remaining"] == 5000
    [record] = sim.records()
    assert record.path == "/rate_limit" and not record.counted and record.token == TOKEN
    sim.reset_records()
    async with Client(blind_server(hub)) as client:
        blind = await call(client, "rate_limit")
    assert blind["source"] == "none" and blind["remaining"] is None
    assert "blind" in blind["message"] and sim.records() == []


async def test_cache_stats_fleet_status_and_fleet_peers_of_an_in_process_node(node_server,
                                                                              engine):
    async with Client(node_server) as client:
        await call(client, "github_get", path=REPO)
        await call(client, "github_get", path=REPO)
        stats = await call(client, "cache_stats")
        status = await call(client, "fleet_status")
        peers = await call(client, "fleet_peers")
    expected = await EngineView(engine).stats()
    assert stats == expected
    assert (stats["requests"], stats["local_hits"], stats["misses"]) == (2, 1, 1)
    assert stats["api_calls_made"] == 1 and stats["total_entries"] == 1
    assert status == {"status": "local-only", "role": "mcp", "peer_id": None,
                      "connected_peers": 0, "fleet_errors": 0, "peer_count": 0}
    assert peers == {"peer_count": 0, "peers": []}


async def test_a_hubs_fleet_tools_and_resources_report_its_runners(hub):
    hub.reports.update("12D3KooWrunner", {"requests": 12, "peer_hits": 9, "misses": 3,
                                          "api_calls_made": 3, "api_calls_saved": 9}, 1.0)
    async with Client(blind_server(hub)) as client:
        status = await call(client, "fleet_status")
        stats = await call(client, "cache_stats")
        peers = await call(client, "fleet_peers")
        status_doc = await client.read_resource("fleet://status")
        peers_doc = await client.read_resource("fleet://peers")
    assert status["role"] == "bootstrap" and status["status"] == "starting"
    assert (status["fleet_requests"], status["fleet_api_calls_made"]) == (12, 3)
    assert status["fleet_api_calls_saved"] == 9 and status["fleet_reporting_peers"] == 1
    assert stats == hub.stats()
    assert peers == {"peer_count": 0, "peers": []}
    assert json.loads(status_doc.contents[0].text)["fleet_requests"] == 12
    assert json.loads(peers_doc.contents[0].text) == {"peer_count": 0, "peers": []}


async def test_the_handshake_era_protocol_works_too(node_server):
    async with Client(node_server, mode="legacy") as client:
        assert {t.name for t in (await client.list_tools()).tools} == READ_TOOLS | FLEET_TOOLS
        assert (await call(client, "github_get", path=REPO))["cache"] == "miss"
