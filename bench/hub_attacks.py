"""One member against the hub (issue 12, finding 7): memory and an honest runner's latency.

    .venv/bin/python -m bench.hub_attacks [--rounds 3] [--before DIR]

Each attack (:mod:`github_p2p.testing.attacks`) runs ``--rounds`` times against one hub process,
with a runner answering 10 requests meanwhile. Per round: the hub's RSS before, its peak growth
during the attack, and its RSS once the attacker has left (rounds after the first show whether
what stays is a leak or what the allocator keeps). A hub that grows past 1.5 GB is killed and
the attack reported as such. With ``--before DIR`` (a checkout of an earlier commit, e.g.
``git worktree add /work/before <commit>``), the hub runs from that checkout too, side by side.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import requests
import trio

from github_p2p.core.keys import derive_network_key
from github_p2p.p2p.host import HostSettings, running_host
from github_p2p.testing.attacks import (
    MemorySampler,
    attack,
    hold_lease,
    non_reader,
    put_envelope,
    stalled_writer,
    wait_for_fills,
)
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.procstat import rss_mb
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

SECRET = "bench-hub-attacks-0001"
PSK = derive_network_key(SECRET)
MiB = 1024 * 1024


def _stats(node: NodeProcess) -> dict[str, Any]:
    stats: dict[str, Any] = requests.get(node.endpoint + "/_p2p/stats", timeout=30).json()
    return stats


#: How long each attack is kept up (past the hub's 10 s deadlines).
HOLD_SECONDS = 15.0


def _honest(runner: NodeProcess, prefix: str) -> list[float]:
    """10 requests of an honest runner; then the attack is kept up to ``HOLD_SECONDS``."""
    started = time.monotonic()
    took = []
    for n in range(10):
        began = time.monotonic()
        resp = requests.get(runner.endpoint + f"/repos/octo/hello/contents/{prefix}/{n}",
                            headers={"Authorization": "Bearer ghs_bench"}, timeout=120)
        resp.raise_for_status()
        took.append(time.monotonic() - began)
    time.sleep(max(0.0, HOLD_SECONDS - (time.monotonic() - started)))
    return took


def _settle(hub: NodeProcess, timeout: float = 60.0) -> float:
    """Wait until only the runner's stream is left (or the timeout); the hub's RSS then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _stats(hub)["connected_peers"] <= 1:
                break
        except requests.RequestException:
            break
        time.sleep(0.2)
    time.sleep(1)
    return rss_mb(hub.process.pid)


def _round(hub: NodeProcess, runner: NodeProcess, name: str, tag: str,
           run: Callable[[Callable[[], Any]], Any]) -> dict[str, Any]:
    before = rss_mb(hub.process.pid)
    with MemorySampler(hub.process.pid, hub.kill) as sampled:
        took = run(lambda: _honest(runner, tag))
        after = _settle(hub) if hub.process.poll() is None else float("nan")
    return {"attack": name, "rss_before_mb": round(before), "peak_growth_mb":
            round(sampled.growth), "rss_after_mb": round(after) if after == after else None,
            "killed_at_1_5_gb": sampled.killed,
            "honest_p50_s": round(statistics.median(took), 3) if took else None,
            "honest_max_s": round(max(took), 3) if took else None}


def _flood(hub: NodeProcess, meanwhile: Callable[[], Any]) -> Any:
    async def main() -> Any:
        async with AsyncExitStack() as stack:
            hosts = [await stack.enter_async_context(running_host(HostSettings(psk=PSK)))
                     for _ in range(10)]
            held = [await hold_lease(host, hub.multiaddr) for host in hosts]
            async with trio.open_nursery() as nursery:
                for channels, entry in held:
                    nursery.start_soon(wait_for_fills, channels, entry, 60)
                deadline = trio.current_time() + 60
                while trio.current_time() < deadline:
                    if (await trio.to_thread.run_sync(_stats, hub))["waiters"] >= 500:
                        break
                    await trio.sleep(0.2)
                result = await trio.to_thread.run_sync(meanwhile)
                nursery.cancel_scope.cancel()
            return result
    return trio.run(main)


def bench_design(label: str, pythonpath: str | None, rounds: int) -> list[dict[str, Any]]:
    """Every attack, ``rounds`` times, against a hub of one design."""
    extra = {"PYTHONPATH": pythonpath} if pythonpath else {}
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, \
            GitHubSimulator(SimulatorConfig(rate_limit=1_000_000, latency=0.02)) as sim, \
            LocalFleet(sim.url, secret=SECRET, workdir=Path(tmp), extra_env=extra) as fleet:
        big = os.urandom(32)
        attacks: list[tuple[str, Callable[[NodeProcess, Callable[[], Any]], Any]]] = [
            ("non-reading x8", lambda hub, m: trio.run(attack, hub.multiaddr, PSK, 8,
                                                       non_reader(big), m)),
            ("non-reading x40", lambda hub, m: trio.run(attack, hub.multiaddr, PSK, 40,
                                                        non_reader(big), m)),
            ("partial frames x40", lambda hub, m: trio.run(
                attack, hub.multiaddr, PSK, 40, stalled_writer(4 * MiB + 1000), m)),
            ("lease waits x600", _flood),
        ]
        for name, run in attacks:
            for index in range(rounds):
                hub = fleet.start_hub(timeout=120) if index == 0 else fleet.hubs[-1]
                if index == 0:
                    runner = fleet.start_peer(bootstrap=hub.multiaddr, timeout=120)
                    trio.run(put_envelope, hub.multiaddr, PSK, big, 4 * MiB)
                if hub.process.poll() is not None:
                    break
                tag = f"{label}-{name}-{index}".replace(" ", "_")
                row = _round(hub, runner, name, tag, functools.partial(run, hub))
                row.update(design=label, round=index + 1)
                out.append(row)
                print(json.dumps(row), flush=True)
            for node in (runner, hub):
                node.stop()
    return out


def main() -> int:
    """Run the benchmark; rows as JSON lines, then a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="checkout of an earlier commit")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores", file=sys.stderr)
    rows = []
    if args.before is not None:
        # `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH: the
        # nodes of the earlier design must start from its checkout.
        here = os.getcwd()
        os.chdir(args.before)
        try:
            rows += bench_design("before", str(args.before), 1)
        finally:
            os.chdir(here)
    rows += bench_design("after", None, args.rounds)
    print("\n| design | attack | round | RSS before | peak growth | RSS after | honest p50 / max |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        killed = " (killed at +1.5 GB)" if row["killed_at_1_5_gb"] else ""
        print(f"| {row['design']} | {row['attack']} | {row['round']} | {row['rss_before_mb']} MB"
              f" | +{row['peak_growth_mb']} MB{killed} | {row['rss_after_mb']} MB | "
              f"{row['honest_p50_s']} s / {row['honest_max_s']} s |")
    print(f"load average after {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
