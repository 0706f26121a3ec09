"""The queue tools of ``github-p2p mcp`` (a real subprocess, driven over stdio by the SDK's real
client): through a running daemon at ``GITHUB_P2P_ENDPOINT``, and without one, in-process with
a durable queue in the cache directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from github_p2p.core.queueseal import PlainSealer, QueueRef
from github_p2p.mcp.queue_tools import STDIO_STORE_FILE
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.workqueue.client import QueueClient
from github_p2p.workqueue.local import LocalWorkQueue

pytestmark = pytest.mark.slow

ITEMS = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py"]


def server(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "github_p2p.cli", "mcp"],
                                 env={"PYTHONUNBUFFERED": "1", **env})


async def call(client: Client, tool: str, /, **arguments):
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def work_through(client: Client, name: str, **run: int) -> list[tuple[int, str]]:
    """Claim, heartbeat and complete until drained (item 1 fails); what was claimed."""
    claimed = []
    while (claim := await call(client, "queue_claim", name=name, wait=5, **run))["claimed"]:
        await call(client, "queue_heartbeat", name=name, id=claim["id"], token=claim["token"],
                   **run)
        await call(client, "queue_complete", name=name, id=claim["id"], token=claim["token"],
                   ok=claim["id"] != 1, **run)
        claimed.append((claim["id"], claim["item"]))
    assert claim["drained"] is True
    return claimed


async def test_stdio_queue_tools_go_to_the_daemon_at_github_p2p_endpoint(tmp_path):
    with LocalFleet("http://127.0.0.1:9", workdir=tmp_path) as fleet:
        daemon = fleet.start_peer(bootstrap="")  # local-only: it runs the queue itself
        # The run comes from the stdio server's environment, as an agent's job would give it.
        env = {"GITHUB_P2P_ENDPOINT": daemon.endpoint, "GITHUB_RUN_ID": "555",
               "GITHUB_RUN_ATTEMPT": "2"}
        async with Client(server(env)) as client:
            submitted = await call(client, "queue_submit", name="stdio", items=ITEMS)
            claimed = await work_through(client, "stdio")
            stale = await client.call_tool("queue_complete", {"name": "stdio", "id": 0,
                                                              "token": "not-the-token"})
            status = await call(client, "queue_status", name="stdio")
        # The daemon holds the queue: its own HTTP queue API says the same.
        queues = QueueClient(daemon.endpoint)
        try:
            direct = queues.status(QueueRef("stdio", "555", 2)).to_json()
        finally:
            queues.close()
        log = Path(daemon.log_file).read_text()
    assert submitted["queue"] == {"name": "stdio", "run_id": "555", "attempt": 2}
    assert submitted["mode"] == "local" and "no fleet" in submitted["notice"]
    assert claimed == list(enumerate(ITEMS))
    assert stale.is_error and "item 0 was already completed" in stale.content[0].text
    assert (status["done"], status["failed"], status["drained"]) == (2, 1, True)
    assert direct == {key: value for key, value in status.items() if key != "queue"}
    assert "Traceback" not in log


async def test_stdio_without_a_daemon_keeps_its_queue_in_the_cache_dir(tmp_path):
    cache = tmp_path / "cache"
    env = {"GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_REPOSITORY": "octo/hello",
           "GITHUB_P2P_CACHE_DIR": str(cache)}
    async with Client(server(env)) as client:
        submitted = await call(client, "queue_submit", name="alone", items=ITEMS)
        claimed = await work_through(client, "alone")
        rerun = await call(client, "queue_submit", name="alone", items=ITEMS, attempt=2)
        again = await work_through(client, "alone", attempt=2)
        wrong = await client.call_tool("queue_heartbeat", {"name": "alone", "id": 7,
                                                           "token": "t"})
    assert submitted["queue"] == {"name": "alone", "run_id": "local", "attempt": 1}
    assert submitted["mode"] == "local" and claimed == list(enumerate(ITEMS))
    assert rerun["carried"] == 2 and again == [(1, ITEMS[1])]
    assert wrong.is_error and "the queue has no item 7" in wrong.content[0].text
    # The queue outlives the process: it is in the cache directory.
    queue = LocalWorkQueue.open(cache / STDIO_STORE_FILE, sealer=PlainSealer("octo/hello"))
    try:
        status = await queue.status(QueueRef("alone", "local", 2))
    finally:
        queue.close()
    assert (status.counts.done, status.counts.failed, status.counts.carried) == (2, 1, 2)
