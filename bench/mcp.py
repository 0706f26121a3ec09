"""What MCP costs a node, all real processes on loopback against the simulator.

    .venv/bin/python -m bench.mcp [--calls 300]

1. import cost of a runner daemon's modules, without and with the MCP SDK (why the daemon
   loads the SDK on the first MCP request only);
2. a runner daemon: ready time and RSS before MCP is used, the first MCP session (SDK import,
   server build, session manager start, initialize), a later session, RSS after;
3. ``github_get`` of a locally cached resource through ``/_p2p/mcp`` against a plain GET of
   the same resource through the daemon's proxy, in the same run;
4. ``github-p2p mcp`` over stdio: spawn to initialized.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import trio
from mcp import Client, StdioServerParameters

from bench.stats import summary_ms
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.procstat import rss_mb
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

TOKEN = "ghp_benchmcptoken00000001"
PATH = "/repos/octo/hello"


def import_seconds(modules: str, runs: int = 3) -> float:
    """Median wall time of a fresh interpreter importing ``modules``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


async def mcp_phase(url: str, calls: int) -> dict[str, object]:
    out: dict[str, object] = {}
    start = time.perf_counter()
    async with Client(url) as client:
        out["first session"] = time.perf_counter() - start
        await client.call_tool("github_get", {"path": PATH})
        samples = []
        for _ in range(calls):
            t = time.perf_counter()
            result = await client.call_tool("github_get", {"path": PATH})
            samples.append(time.perf_counter() - t)
            assert result.structured_content["cache"] == "hit-local"
        out["github_get hit-local"] = samples
    start = time.perf_counter()
    async with Client(url) as client:
        out["later session"] = time.perf_counter() - start
    return out


async def stdio_phase(env: dict[str, str]) -> float:
    params = StdioServerParameters(command=sys.executable, args=["-m", "github_p2p.cli", "mcp"],
                                   env=env)
    start = time.perf_counter()
    async with Client(params) as client:
        elapsed = time.perf_counter() - start
        await client.list_tools()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    plain = import_seconds("github_p2p.nodes.peer")
    loaded = import_seconds("github_p2p.nodes.peer, github_p2p.mcp.surfaces")
    print(f"import runner daemon modules: {plain:.2f} s; with the MCP SDK: {loaded:.2f} s")
    with tempfile.TemporaryDirectory() as tmp, \
            GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=Path(tmp)) as fleet:
        start = time.perf_counter()
        daemon = fleet.start_peer(bootstrap="", env={"GITHUB_TOKEN": TOKEN})
        print(f"daemon ready after spawn: {time.perf_counter() - start:.2f} s")
        pid = int(daemon.info["pid"])
        print(f"daemon RSS before MCP: {rss_mb(pid):.0f} MiB")
        results = trio.run(mcp_phase, daemon.endpoint + "/_p2p/mcp", args.calls)
        print(f"daemon RSS after MCP: {rss_mb(pid):.0f} MiB")
        print(f"first MCP session (SDK import + build + initialize): "
              f"{results['first session']:.2f} s")
        print(f"later MCP session (initialize): {float(results['later session']) * 1000:.1f} ms")  # type: ignore[arg-type]
        proxy = []
        with requests.Session() as session:
            for _ in range(args.calls):
                t = time.perf_counter()
                session.get(daemon.endpoint + PATH, timeout=10).raise_for_status()
                proxy.append(time.perf_counter() - t)
        print(f"github_get hit-local via MCP, p50/p95/p99 ms: "
              f"{summary_ms(results['github_get hit-local'])}")  # type: ignore[arg-type]
        print(f"GET hit-local via the proxy, p50/p95/p99 ms: {summary_ms(proxy)}")
        env = {"GITHUB_API_URL": sim.url, "GITHUB_TOKEN": TOKEN,
               "GITHUB_P2P_CACHE_DIR": str(Path(tmp) / "stdio")}
        print(f"github-p2p mcp (stdio) spawn to initialized: "
              f"{trio.run(stdio_phase, env):.2f} s")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
