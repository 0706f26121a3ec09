"""``github-p2p demo``: a fleet on this machine against the built-in GitHub simulator.

Three modes run the same workload, one after another, side by side:

* ``direct``: every runner asks GitHub (no cache);
* ``local``: every runner has its own cache (what ``gh api --cache`` or requests-cache give);
* ``p2p``: every runner goes through its github-p2p peer daemon, linked to one hub.

N runner processes start at the same moment and each asks for every resource twice in its own
order. Upstream calls are the simulator's own count.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .client import GitHubClient
from .config import ClientSettings
from .localfleet import LocalFleet
from .simulator import GitHubSimulator, SimulatorConfig

__all__ = ["ModeResult", "run_demo", "run_mode"]

REPO = "octo/hello"


@dataclass(frozen=True)
class ModeResult:
    """What one mode cost."""

    mode: str
    requests: int
    upstream_calls: int
    quota_used: int
    latencies: tuple[float, ...]
    wall: float
    errors: int

    @property
    def saved(self) -> int:
        """Requests answered without a call to GitHub."""
        return self.requests - self.upstream_calls

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


def resource_paths(count: int) -> list[str]:
    """``count`` distinct, realistic read-only resources of one repository."""
    fixed = [f"/repos/{REPO}", f"/repos/{REPO}/releases", f"/repos/{REPO}/pulls",
             f"/repos/{REPO}/actions/runs", f"/repos/{REPO}/issues"]
    files = [f"/repos/{REPO}/contents/src/module{i}.py" for i in range(max(0, count - 5))]
    return (fixed + files)[:count]


def _worker(mode: str, index: int, api_url: str, endpoint: str | None, cache_dir: str,
            paths: list[str], start_at: float, results: Any) -> None:
    token = f"ghs_demo_runner_{index:04d}"
    order = paths * 2
    random.Random(index).shuffle(order)
    latencies: list[float] = []
    errors = 0
    session = requests.Session()
    client: GitHubClient | None = None
    if mode == "local":
        client = GitHubClient.in_process(ClientSettings(
            api_url=api_url, token=token, scope=REPO, cache_dir=Path(cache_dir)))
    elif mode == "p2p":
        assert endpoint is not None
        client = GitHubClient.from_env({"GITHUB_P2P_ENDPOINT": endpoint, "GITHUB_TOKEN": token,
                                        "GITHUB_REPOSITORY": REPO})
    time.sleep(max(0.0, start_at - time.time()))  # every runner starts at the same moment
    for path in order:
        began = time.perf_counter()
        try:
            if client is None:
                resp = session.get(api_url + path, headers={"Authorization": f"Bearer {token}"},
                                   timeout=30)
                errors += resp.status_code >= 400
            else:
                errors += client.request("GET", path).status >= 400
        except Exception:
            errors += 1
        latencies.append(time.perf_counter() - began)
    if client is not None:
        client.close()
    results.put((latencies, errors))


def run_mode(mode: str, sim: GitHubSimulator, runners: int, paths: list[str],
             workdir: Path, endpoints: list[str] | None = None) -> ModeResult:
    """Run the workload in ``mode`` with ``runners`` processes and measure it."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    sim.reset_records()
    start_at = time.time() + 1.5  # leaves time for every process to import and wait
    procs = [ctx.Process(target=_worker, args=(
        mode, i, sim.url, endpoints[i] if endpoints else None, str(workdir / f"{mode}-{i}"),
        paths, start_at, results)) for i in range(runners)]
    for proc in procs:
        proc.start()
    collected = [results.get(timeout=600) for _ in procs]
    wall = time.time() - start_at
    for proc in procs:
        proc.join(30)
    records = [r for r in sim.records() if not r.path.startswith("/_")]
    latencies = tuple(x for lat, _ in collected for x in lat)
    return ModeResult(mode, len(latencies), len(records), sum(r.counted for r in records),
                      latencies, wall, sum(e for _, e in collected))


def format_table(results: list[ModeResult]) -> str:
    """The side-by-side comparison, as a Markdown table."""
    lines = ["| mode | requests | upstream calls | quota used | calls saved | p50 ms | p95 ms "
             "| wall s | errors |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.mode} | {r.requests} | {r.upstream_calls} | {r.quota_used} | "
                     f"{r.saved} | {r.percentile(50):.1f} | {r.percentile(95):.1f} | "
                     f"{r.wall:.2f} | {r.errors} |")
    return "\n".join(lines)


def run_demo(*, runners: int = 4, resources: int = 40, latency: float = 0.1) -> int:
    """Run all three modes and print the comparison; 0 when p2p behaved as promised."""
    paths = resource_paths(resources)
    print(f"github-p2p demo: {runners} runners x {2 * len(paths)} requests over "
          f"{len(paths)} resources, GitHub latency {latency * 1000:.0f} ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="github-p2p-demo-") as tmp, \
            GitHubSimulator(SimulatorConfig(latency=latency, rate_limit=1_000_000)) as sim:
        workdir = Path(tmp)
        results = [run_mode("direct", sim, runners, paths, workdir)]
        print(f"  direct done ({results[-1].wall:.1f} s)", flush=True)
        results.append(run_mode("local", sim, runners, paths, workdir))
        print(f"  local done ({results[-1].wall:.1f} s)", flush=True)
        with LocalFleet(sim.url, workdir=workdir / "fleet") as fleet:
            fleet.start_hub()
            peers = [fleet.start_peer(wait=False) for _ in range(runners)]
            for peer in peers:
                peer.wait_ready(60)
            results.append(run_mode("p2p", sim, runners, paths, workdir,
                                    [p.endpoint for p in peers]))
            print(f"  p2p done ({results[-1].wall:.1f} s)", flush=True)
            fleet_stats = [requests.get(p.endpoint + "/_p2p/stats", timeout=5).json()
                           for p in peers]
    print()
    print(format_table(results))
    p2p = results[-1]
    made = sum(int(s["api_calls_made"]) for s in fleet_stats)
    print(f"\np2p: the fleet paid {p2p.upstream_calls} upstream calls for {len(paths)} unique "
          f"resources ({results[1].upstream_calls} with a cache per runner, "
          f"{results[0].upstream_calls} with none); runners report {made} calls made, "
          f"p50 {statistics.median(p2p.latencies) * 1000:.1f} ms.")
    ok = p2p.errors == 0 and made == p2p.upstream_calls
    if not ok:
        print("demo: the fleet's own accounting disagrees with the simulator", file=sys.stderr)
    return 0 if ok else 1
