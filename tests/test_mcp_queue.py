"""The work queue's MCP tools with the SDK's real client, in memory, over a real
:class:`LocalWorkQueue` (its board and store): every tool, every refusal as a tool error."""

from __future__ import annotations

import pytest
import trio
from mcp import Client

from github_p2p.core.queue import QueueLimits
from github_p2p.core.queueseal import PlainSealer
from github_p2p.mcp.queue_tools import QUEUE_TOOLS, QueueTools, RunDefaults, stdio_queue
from github_p2p.mcp.server import build_server
from github_p2p.workqueue.board import QueueBoard
from github_p2p.workqueue.client import EndpointWorkQueue
from github_p2p.workqueue.daemon import DaemonQueues
from github_p2p.workqueue.fleet import FleetWorkQueue
from github_p2p.workqueue.local import LocalWorkQueue
from github_p2p.workqueue.store import MemoryQueueStore

ITEMS = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py"]


@pytest.fixture
def queue(clock):
    # The board's wall clock is the test's, so that leases lapse when the test says.
    local = LocalWorkQueue(QueueBoard(MemoryQueueStore(), limits=QueueLimits(max_items=5),
                                      clock=clock), PlainSealer("octo/hello"))
    yield local
    local.close()


@pytest.fixture
def server(queue):
    return build_server([QueueTools(queue, RunDefaults(run_id="4242", attempt="1"))])


async def call(client: Client, tool: str, /, **arguments):
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def error(client: Client, tool: str, /, **arguments) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text
    assert "Traceback" not in text
    return text


async def test_the_five_tools_are_listed_with_their_arguments_and_hints(server):
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == set(QUEUE_TOOLS)
    required = {name: tool.input_schema.get("required") for name, tool in tools.items()}
    assert required == {"queue_submit": ["name", "items"], "queue_claim": ["name"],
                        "queue_heartbeat": ["name", "id", "token"],
                        "queue_complete": ["name", "id", "token"], "queue_status": ["name"]}
    claim = tools["queue_claim"].input_schema["properties"]
    assert claim["wait"]["maximum"] == 30 and claim["wait"]["default"] == 10
    assert "GITHUB_RUN_ID" in claim["run_id"]["description"]
    assert "GITHUB_RUN_ATTEMPT" in claim["attempt"]["description"]
    assert tools["queue_status"].annotations.read_only_hint is True
    assert tools["queue_submit"].annotations.idempotent_hint is True
    assert tools["queue_claim"].annotations.idempotent_hint is False
    for tool in tools.values():
        assert tool.description and tool.annotations.open_world_hint is False


async def test_submit_claim_heartbeat_complete_until_drained(server):
    async with Client(server) as client:
        first = await call(client, "queue_submit", name="suite", items=ITEMS)
        again = await call(client, "queue_submit", name="suite", items=ITEMS, lease_ttl=5)
        done: list[str] = []
        ttls: set[float] = set()
        while True:
            claim = await call(client, "queue_claim", name="suite", holder="agent-1", wait=0)
            if not claim["claimed"]:
                break
            status = await call(client, "queue_status", name="suite")
            assert status["leased"] == 1
            assert status["holders"][0]["holder"] == "agent-1"
            assert status["holders"][0]["id"] == claim["id"]
            beat = await call(client, "queue_heartbeat", name="suite", id=claim["id"],
                              token=claim["token"])
            assert beat["id"] == claim["id"] and 0 < beat["expires_in"] <= claim["lease_ttl"]
            report = await call(client, "queue_complete", name="suite", id=claim["id"],
                                token=claim["token"])
            assert (report["state"], report["outcome"]) == ("done", "done")
            done.append(claim["item"])
            ttls.add(claim["lease_ttl"])
        final = await call(client, "queue_status", name="suite", wait=5)
    # The run comes from the node's defaults, and says so in every answer.
    assert first["queue"] == {"name": "suite", "run_id": "4242", "attempt": 1}
    assert (first["created"], first["total"], first["carried"]) == (True, 3, 0)
    assert first["mode"] == "local" and again["created"] is False
    assert ttls == {60}  # the first submitter's policy holds, not lease_ttl=5
    assert done == ITEMS  # list order
    assert claim == {"claimed": False, "queue": first["queue"], "drained": True,
                     "status": {**claim["status"], "done": 3, "drained": True}}
    assert (final["done"], final["ready"], final["leased"], final["drained"]) == (3, 0, 0, True)
    assert final["holders"] == [] and final["total"] == 3


async def test_a_repeated_completion_is_a_no_op(server):
    async with Client(server) as client:
        await call(client, "queue_submit", name="q", items=ITEMS[:1])
        claim = await call(client, "queue_claim", name="q")
        first = await call(client, "queue_complete", name="q", id=claim["id"],
                           token=claim["token"], ok=False)
        second = await call(client, "queue_complete", name="q", id=claim["id"],
                            token=claim["token"], ok=False)
        status = await call(client, "queue_status", name="q")
    assert (first["state"], first["outcome"]) == ("failed", "failed")
    assert (second["state"], second["outcome"]) == ("failed", "repeat")
    assert (status["failed"], status["drained"]) == (1, True)


async def test_a_waiting_claim_gets_the_item_another_agent_gave_back(server):
    async with Client(server) as one, Client(server) as two:
        await call(one, "queue_submit", name="q", items=ITEMS[:1], retry_failed=True)
        held = await call(one, "queue_claim", name="q", holder="one")
        busy = await call(two, "queue_claim", name="q", holder="two", wait=0)
        assert busy["claimed"] is False and busy["drained"] is False
        assert [(h["holder"], h["id"]) for h in busy["status"]["holders"]] == [("one", 0)]
        got: dict[str, object] = {}

        async def waiter() -> None:
            got.update(await call(two, "queue_claim", name="q", holder="two", wait=30))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            back = await call(one, "queue_complete", name="q", id=held["id"],
                              token=held["token"], ok=False)
    assert back["outcome"] == "retry" and back["state"] == "ready"
    assert got["claimed"] is True and got["item"] == ITEMS[0] and got["attempt"] == 2
    assert got["token"] != held["token"]


async def test_a_rerun_replays_only_what_did_not_succeed(server):
    async with Client(server) as client:
        await call(client, "queue_submit", name="q", items=ITEMS)
        for _ in ITEMS:
            claim = await call(client, "queue_claim", name="q")
            await call(client, "queue_complete", name="q", id=claim["id"], token=claim["token"],
                       ok=claim["item"] != ITEMS[1])
        rerun = await call(client, "queue_submit", name="q", items=ITEMS, attempt=2)
        claim = await call(client, "queue_claim", name="q", attempt=2)
        await call(client, "queue_complete", name="q", id=claim["id"], token=claim["token"],
                   attempt=2)
        last = await call(client, "queue_claim", name="q", attempt=2, wait=0)
        other_run = await error(client, "queue_status", name="q", run_id="4243")
    assert rerun["queue"]["attempt"] == 2 and (rerun["created"], rerun["carried"]) == (True, 2)
    assert claim["item"] == ITEMS[1] and claim["queue"]["attempt"] == 2
    assert last["drained"] is True and last["status"]["carried"] == 2
    assert "run 4243" in other_run and "queue_submit" in other_run


async def test_a_different_list_is_refused_naming_both(server):
    async with Client(server) as client:
        await call(client, "queue_submit", name="q", items=ITEMS)
        message = await error(client, "queue_submit", name="q",
                              items=[ITEMS[0], "tests/test_x.py", ITEMS[2]])
    assert "queue 'q' (run 4242, attempt 1) already holds another list" in message
    assert "'tests/test_b.py' there, 'tests/test_x.py' here" in message
    assert "same items in the same order" in message


async def test_stale_leases_are_refused_with_the_reason(server, clock):
    async with Client(server) as client:
        await call(client, "queue_submit", name="q", items=ITEMS[:1], lease_ttl=1)
        mine = await call(client, "queue_claim", name="q", holder="slow")
        wrong = await error(client, "queue_heartbeat", name="q", id=mine["id"],
                            token="not-the-token")
        clock.advance(5)  # the lease lapses without a heartbeat; another agent takes the item
        theirs = await call(client, "queue_claim", name="q", holder="fast")
        late_beat = await error(client, "queue_heartbeat", name="q", id=mine["id"],
                                token=mine["token"])
        late_report = await error(client, "queue_complete", name="q", id=mine["id"],
                                  token=mine["token"])
        ok = await call(client, "queue_complete", name="q", id=theirs["id"],
                        token=theirs["token"])
    assert theirs["item"] == mine["item"] and theirs["attempt"] == 2
    for message in (wrong, late_beat, late_report):
        assert message.startswith("Error executing tool queue_")
        assert "queue 'q' (run 4242, attempt 1): cannot" in message
        assert "no longer yours" in message and "queue_claim" in message
    assert "held by another lease now" in late_report
    assert ok["outcome"] == "done"


async def test_unknown_queues_and_items_are_refused(server):
    async with Client(server) as client:
        messages = [await error(client, "queue_status", name="nobody-submitted"),
                    await error(client, "queue_claim", name="nobody-submitted", wait=0)]
        await call(client, "queue_submit", name="q", items=ITEMS)
        messages.append(await error(client, "queue_heartbeat", name="q", id=99, token="t"))
        messages.append(await error(client, "queue_complete", name="q", id=99, token="t"))
    for message in messages[:2]:
        assert "queue 'nobody-submitted' (run 4242, attempt 1)" in message
        assert "no such queue for this run and attempt" in message
    for message in messages[2:]:
        assert "the queue has no item 99" in message and "item id" in message


async def test_limits_are_refused(server):
    async with Client(server) as client:
        too_many = await error(client, "queue_submit", name="q",
                               items=[f"i{n}" for n in range(6)])
        too_long = await error(client, "queue_submit", name="q", items=["x" * 1025])
    assert too_many.endswith("6 items; a queue holds at most 5")
    assert "is 1025 bytes; the limit is 1024" in too_long


@pytest.mark.parametrize(("tool", "arguments", "expected"), [
    ("queue_submit", {"name": "q", "items": ["a", "b\nc"]}, "contains control characters"),
    ("queue_submit", {"name": "q", "items": ["a", ""]}, "a non-empty string"),
    ("queue_submit", {"name": "q", "items": ["a"], "lease_ttl": 0}, "lease_ttl must be"),
    ("queue_submit", {"name": "q", "items": ["a"], "max_attempts": 0}, "max_attempts must"),
    ("queue_submit", {"name": "q", "items": "a"}, "validation error"),
    ("queue_status", {"name": ""}, "a queue name must be 1..128 characters"),
    ("queue_status", {"name": "q\x07"}, "must not contain control characters"),
    ("queue_status", {"name": "q", "attempt": 0}, "run attempt must be a positive integer"),
    ("queue_status", {"name": "q", "run_id": "r" * 129}, "a run id must be 1..128"),
    ("queue_status", {"name": "q", "wait": -1}, "greater than or equal to 0"),
    ("queue_claim", {"name": "q", "wait": 31}, "less than or equal to 30"),
    ("queue_claim", {"name": "q", "holder": "h" * 257}, "at most 256 characters"),
    ("queue_heartbeat", {"name": "q", "id": -1, "token": "t"}, "greater than or equal to 0"),
    ("queue_complete", {"name": "q", "id": 0, "token": ""}, "at least 1 character"),
    ("queue_complete", {"name": "q", "id": 0}, "token\n  Field required"),
])
async def test_bad_arguments_are_tool_errors(server, tool, arguments, expected):
    async with Client(server) as client:
        message = await error(client, tool, **arguments)
        # The server is still serving.
        assert (await call(client, "queue_submit", name="fine", items=["x"]))["total"] == 1
    assert expected in message


async def test_a_bad_run_attempt_on_the_node_refuses_only_the_calls_that_rely_on_it(queue):
    server = build_server([QueueTools(queue, RunDefaults.from_env(
        {"GITHUB_RUN_ID": " 99 ", "GITHUB_RUN_ATTEMPT": "first"}))])
    async with Client(server) as client:
        message = await error(client, "queue_submit", name="q", items=ITEMS)
        named = await call(client, "queue_submit", name="q", items=ITEMS, attempt=1)
    assert "this node's GITHUB_RUN_ATTEMPT is 'first', not a number: pass attempt" in message
    assert named["queue"] == {"name": "q", "run_id": "99", "attempt": 1}


def test_run_defaults_come_from_the_environment():
    assert RunDefaults.from_env({}) == RunDefaults("local", "1")
    assert RunDefaults.from_env({"GITHUB_RUN_ID": "", "GITHUB_RUN_ATTEMPT": " "}) == \
        RunDefaults("local", "1")
    run = RunDefaults.from_env({"GITHUB_RUN_ID": "123", "GITHUB_RUN_ATTEMPT": "3"})
    assert run.ref("q") == run.ref("q", None, None)
    assert (run.ref("q").run_id, run.ref("q").attempt) == ("123", 3)
    assert (run.ref("q", "7", 1).run_id, run.ref("q", "7", 1).attempt) == ("7", 1)


async def test_an_unreachable_hub_is_a_tool_error_that_says_to_retry():
    # A runner daemon's queues with a fleet whose hub is not connected: fleet mode, no link.
    local = LocalWorkQueue.open(None)
    fleet = FleetWorkQueue(lambda: [], PlainSealer("octo/hello"), connect_wait=0.1)
    server = build_server([QueueTools(DaemonQueues(local, fleet, fallback_after=0.1))])
    async with Client(server) as client:
        claim = await error(client, "queue_claim", name="q", wait=0)
        status = await error(client, "queue_status", name="q")
        # A submission falls back to this runner, loudly.
        submitted = await call(client, "queue_submit", name="q", items=ITEMS)
        claimed = await call(client, "queue_claim", name="q", wait=0)
    for message in (claim, status):
        assert "queue 'q' (run local, attempt 1): no hub is configured" in message
        assert "call again in a few seconds" in message
    assert submitted["mode"] == "local" and "unreachable" in submitted["notice"]
    assert claimed["claimed"] is True and claimed["mode"] == "local"
    local.close()


async def test_a_daemon_that_is_not_there_is_a_tool_error():
    queue = EndpointWorkQueue("http://127.0.0.1:9", timeout=5)
    async with Client(build_server([QueueTools(queue)])) as client:
        message = await error(client, "queue_status", name="q")
    assert "no github-p2p daemon answers at http://127.0.0.1:9" in message
    queue.client.close()


def test_the_stdio_queue_is_the_daemons_or_a_local_one_in_the_cache_dir(tmp_path):
    remote, close = stdio_queue({"GITHUB_P2P_ENDPOINT": "http://127.0.0.1:8700"})
    assert isinstance(remote, EndpointWorkQueue)
    assert remote.client.endpoint == "http://127.0.0.1:8700"
    close()
    local, close = stdio_queue({"GITHUB_P2P_CACHE_DIR": str(tmp_path / "cache")})
    assert isinstance(local, LocalWorkQueue)
    close()
    assert (tmp_path / "cache" / "mcp-queues.sqlite3").is_file()
