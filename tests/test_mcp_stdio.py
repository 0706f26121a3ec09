"""``github-p2p mcp`` as a real subprocess, driven over stdio by the SDK's real client: with an
in-process cache, and through a running daemon at ``GITHUB_P2P_ENDPOINT``. Also the one-line
exit-2 errors when the extra is missing or the hub's token file is unusable."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from mcp import Client, StdioServerParameters

from github_p2p.mcp.queue_tools import QUEUE_TOOLS
from github_p2p.testing.localfleet import LocalFleet

pytestmark = pytest.mark.slow

TOKEN = "ghp_stdiotoken00000000001"
DAEMON_TOKEN = "ghp_daemontoken0000000001"
REPO = "/repos/octo/hello"
ALL_TOOLS = {"github_get", "github_invalidate", "rate_limit", "fleet_status", "fleet_peers",
             "cache_stats", *QUEUE_TOOLS}


def server(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "github_p2p.cli", "mcp"],
                                 env={"PYTHONUNBUFFERED": "1", **env})


async def call(client: Client, name: str, **arguments):
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_every_tool_over_stdio_with_an_in_process_cache(sim, tmp_path):
    env = {"GITHUB_API_URL": sim.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "octo/hello",
           "GITHUB_P2P_CACHE_DIR": str(tmp_path / "cache")}
    async with Client(server(env)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == ALL_TOOLS
        first = await call(client, "github_get", path=REPO)
        second = await call(client, "github_get", path=REPO)
        pages = await call(client, "github_get", path=f"{REPO}/issues",
                           query={"per_page": 20, "state": "all"}, paginate=True)
        await call(client, "github_invalidate", path=REPO)
        third = await call(client, "github_get", path=REPO)
        limit = await call(client, "rate_limit")
        stats = await call(client, "cache_stats")
        status = await call(client, "fleet_status")
        peers = await call(client, "fleet_peers")
        status_doc = json.loads((await client.read_resource("fleet://status")).contents[0].text)
        peers_doc = json.loads((await client.read_resource("fleet://peers")).contents[0].text)
    assert first["data"]["full_name"] == "octo/hello" and first["cache"] == "miss"
    assert second["cache"] == "hit-local" and third["upstream_calls"] == 1
    assert pages["pages"] >= 2 and not pages["truncated"]
    assert limit["source"] == "github" and isinstance(limit["remaining"], int)
    records = sim.records()
    assert {r.token for r in records} == {TOKEN}
    assert stats["api_calls_made"] == len(records)  # /rate_limit included: it was sent
    assert stats["requests"] == 4 + pages["pages"] and stats["role"] == "mcp"
    assert status["status"] == status_doc["status"] == "local-only"
    assert peers == peers_doc == {"peer_count": 0, "peers": []}


async def test_stdio_goes_through_the_daemon_at_github_p2p_endpoint(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        daemon = fleet.start_peer(bootstrap="", env={"GITHUB_TOKEN": DAEMON_TOKEN})
        env = {"GITHUB_P2P_ENDPOINT": daemon.endpoint, "GITHUB_API_URL": sim.url}
        async with Client(server(env)) as client:
            first = await call(client, "github_get", path=f"{REPO}/releases")
            second = await call(client, "github_get", path=f"{REPO}/releases")
            invalidated = await call(client, "github_invalidate", path=f"{REPO}/releases")
            third = await call(client, "github_get", path=f"{REPO}/releases")
            stats = await call(client, "cache_stats")
            status = await call(client, "fleet_status")
            peers = await call(client, "fleet_peers")
        daemon_stats = requests.get(daemon.endpoint + "/_p2p/stats", timeout=10).json()
    assert (first["cache"], second["cache"], third["cache"]) == ("miss", "hit-local", "miss")
    assert invalidated == {"invalidated": f"{REPO}/releases"}
    # The daemon's own numbers, as /_p2p/stats serves them.
    assert stats == daemon_stats
    assert (stats["requests"], stats["local_hits"], stats["api_calls_made"]) == (3, 1, 2)
    assert status["role"] == "runner" and status["status"] == "local-only"
    assert peers == {"peer_count": 0, "peers": []}
    # No token in the stdio server's environment: the daemon used its own.
    assert [r.token for r in sim.records()] == [DAEMON_TOKEN, DAEMON_TOKEN]


@pytest.fixture
def without_sdk(tmp_path):
    """A PYTHONPATH on which ``import mcp`` fails, as it does without the extra."""
    shadow = tmp_path / "no-mcp"
    (shadow / "mcp").mkdir(parents=True)
    (shadow / "mcp" / "__init__.py").write_text("raise ImportError('No module named mcp')\n")
    return str(shadow)


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "github_p2p.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_without_the_extra_mcp_commands_exit_2_naming_it(without_sdk, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("a-long-enough-operator-token\n")
    token_file.chmod(0o600)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": without_sdk,
           "GITHUB_P2P_SECRET": "a-fleet-secret-for-tests"}
    for args in (["mcp"], ["bootstrap", "--cache-dir", str(tmp_path / "hub"),
                           "--mcp-token-file", str(token_file)]):
        done = run_cli(args, env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "pip install 'github-p2p[mcp]'" in done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_unusable_hub_token_options_exit_2(tmp_path):
    weak = tmp_path / "weak"
    weak.write_text("short\n")
    env = {"PATH": "/usr/bin:/bin", "GITHUB_P2P_SECRET": "a-fleet-secret-for-tests"}
    base = ["bootstrap", "--cache-dir", str(tmp_path / "hub")]
    cases = {
        "at least 16 printable characters": ["--mcp-token-file", str(weak)],
        "cannot read --mcp-token-file": ["--mcp-token-file", str(tmp_path / "absent")],
        "--mcp-public-url needs --mcp-token-file": ["--mcp-public-url", "https://h/mcp"],
    }
    for message, extra in cases.items():
        done = run_cli(base + extra, env)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "short" not in done.stderr
