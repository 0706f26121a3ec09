"""The queue tools over Streamable HTTP on real runner daemons (``/_p2p/mcp``) linked to a real
blind bootstrap node, every node a ``github-p2p`` subprocess: two agents on two runners split
one list, and the hub's SQLite record says every item was completed exactly once."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from mcp import Client

from github_p2p.core.keys import derive_fleet_keys, derive_network_key
from github_p2p.core.queueseal import FleetSealer, QueueRef
from github_p2p.mcp.queue_tools import QUEUE_TOOLS
from github_p2p.nodes.hub.queues import QUEUE_STORE_FILE
from github_p2p.testing.localfleet import LocalFleet, NodeProcess

pytestmark = pytest.mark.slow

RUN_ID = "31337"  # the runners' GITHUB_RUN_ID: the tools' default run
ITEMS = [f"tests/test_{n:02d}.py" for n in range(12)]
START = 120.0


@dataclass
class World:
    fleet: LocalFleet
    hub: NodeProcess
    runners: list[NodeProcess]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("mcp-queue")
    # No GitHub calls here: the API URL is a closed port.
    with LocalFleet("http://127.0.0.1:9", workdir=workdir) as fleet:
        hub = fleet.start_hub(name="blind", timeout=START, env={
            "GITHUB_P2P_SECRET": "",
            "GITHUB_P2P_NETWORK_KEY": derive_network_key(fleet.secret).hex()})
        runners = [fleet.start_peer(name=f"runner{i}", bootstrap=hub.multiaddr, wait=False,
                                    env={"GITHUB_RUN_ID": RUN_ID, "GITHUB_RUN_ATTEMPT": "1"})
                   for i in range(2)]
        for runner in runners:
            runner.wait_ready(START)
        assert [r.info["status"] for r in runners] == ["active", "active"]
        yield World(fleet, hub, runners)


def mcp_url(node: NodeProcess, path: str = "/_p2p/mcp") -> str:
    return node.endpoint + path


async def call(client: Client, tool: str, /, **arguments):
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


def hub_record(world: World, ref: QueueRef) -> list[tuple[int, str, int]]:
    """``(index, state, completions)`` of each item of ``ref``, as the hub stored them."""
    queue_id = FleetSealer(derive_fleet_keys(world.fleet.secret,
                                             world.fleet.repository)).key(ref).queue_id
    store = world.fleet.workdir / world.hub.name / "cache" / QUEUE_STORE_FILE
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT idx, state, completions FROM items WHERE queue_id = ? AND "
                          "attempt = ? ORDER BY idx", (queue_id, ref.attempt)).fetchall()
    return [tuple(row) for row in rows]


async def test_two_agents_on_two_runners_complete_every_item_exactly_once(world):
    submitted: list[dict] = []
    ran: list[tuple[int, int, str]] = []  # (agent, id, item)
    first_claims = [trio.Event(), trio.Event()]

    async def agent(index: int) -> None:
        async with Client(mcp_url(world.runners[index])) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert set(QUEUE_TOOLS) <= names and "github_get" in names
            submitted.append(await call(client, "queue_submit", name="suite", items=ITEMS))
            while True:
                claim = await call(client, "queue_claim", name="suite", wait=20,
                                   holder=f"agent{index}")
                if not claim["claimed"]:
                    if claim["drained"]:
                        return
                    continue  # the other agent holds what is left: ask again
                # Each agent holds its first item until the other has one too, so that both
                # take part (an event, not a sleep).
                if not first_claims[index].is_set():
                    first_claims[index].set()
                    await first_claims[1 - index].wait()
                beat = await call(client, "queue_heartbeat", name="suite", id=claim["id"],
                                  token=claim["token"])
                assert 0 < beat["expires_in"] <= claim["lease_ttl"]
                ran.append((index, claim["id"], claim["item"]))
                done = await call(client, "queue_complete", name="suite", id=claim["id"],
                                  token=claim["token"])
                assert (done["state"], done["outcome"]) == ("done", "done")

    async with trio.open_nursery() as nursery:  # both agents at once
        for index in range(2):
            nursery.start_soon(agent, index)

    # Both submitted the same list to the one queue at the hub; the first created it.
    assert sorted(s["created"] for s in submitted) == [False, True]
    assert {(s["total"], s["mode"]) for s in submitted} == {(12, "fleet")}
    assert {(s["queue"]["run_id"], s["queue"]["attempt"]) for s in submitted} == {(RUN_ID, 1)}
    # Every item ran exactly once, on one runner or the other, and each runner took some.
    assert Counter(item_id for _, item_id, _ in ran) == Counter(range(12))
    assert all(item == ITEMS[item_id] for _, item_id, item in ran)
    assert {agent for agent, _, _ in ran} == {0, 1}
    # queue_status agrees on both runners, and so does the hub's own record.
    for runner in world.runners:
        async with Client(mcp_url(runner)) as client:
            status = await call(client, "queue_status", name="suite")
        assert (status["done"], status["failed"], status["ready"], status["leased"]) == (
            12, 0, 0, 0)
        assert status["drained"] is True and status["mode"] == "fleet"
    ref = QueueRef("suite", RUN_ID, 1)
    assert hub_record(world, ref) == [(n, "done", 1) for n in range(12)]
    # The blind hub kept sealed items only.
    store = world.fleet.workdir / world.hub.name / "cache"
    for path in store.glob(QUEUE_STORE_FILE + "*"):
        assert b"tests/test_" not in path.read_bytes()


async def test_refusals_from_the_hub_are_tool_errors(world):
    other = [*ITEMS[:5], "tests/test_other.py"]
    async with Client(mcp_url(world.runners[0])) as one, \
            Client(mcp_url(world.runners[1])) as two:
        await call(one, "queue_submit", name="refusals", items=ITEMS[:6])
        conflict = await two.call_tool("queue_submit", {"name": "refusals", "items": other})
        claim = await call(two, "queue_claim", name="refusals", wait=0)
        stale = await one.call_tool("queue_complete", {"name": "refusals", "id": claim["id"],
                                                       "token": "not-the-lease-token"})
        absent = await one.call_tool("queue_status", {"name": "nobody", "attempt": 3})
        ok = await call(two, "queue_complete", name="refusals", id=claim["id"],
                        token=claim["token"])
    assert conflict.is_error and stale.is_error and absent.is_error
    assert "already holds another list" in conflict.content[0].text
    assert "'tests/test_05.py' there, 'tests/test_other.py' here" in conflict.content[0].text
    assert "cannot complete: item 0 is held by another lease now" in stale.content[0].text
    assert "queue 'nobody' (run 31337, attempt 3)" in absent.content[0].text
    assert ok["outcome"] == "done"


async def test_the_bootstrap_node_offers_no_queue_tools(world):
    async with Client(mcp_url(world.hub, "/mcp")) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        refused = await client.call_tool("queue_status", {"name": "suite"})
    assert names and not names & set(QUEUE_TOOLS)
    assert refused.is_error and "queue_status" in refused.content[0].text


def test_no_node_logged_a_traceback(world):
    for node in (world.hub, *world.runners):
        assert "Traceback" not in Path(node.log_file).read_text(), node.name
