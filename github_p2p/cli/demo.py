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
import queue
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.errors import GitHubP2PError
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

__all__ = ["ModeResult", "RunnerPlan", "run_demo", "run_mode", "run_workload"]

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
    #: ``X-GitHub-P2P-Cache`` outcomes counted by the runners (none in ``direct`` mode).
    outcomes: tuple[tuple[str, int], ...] = ()
    #: Peak RSS of each runner process, MiB.
    runner_rss_mb: tuple[float, ...] = ()

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


@dataclass(frozen=True)
class RunnerPlan:
    """One runner process of a workload: its token, what it asks (in order) and when.

    ``delay`` is seconds after the common start (0 = every runner at the same moment);
    ``cache_dir`` is the runner's own cache in ``local`` mode (reuse it to run a job again).
    """

    token: str
    paths: tuple[str, ...]
    delay: float = 0.0
    cache_dir: str = ""


#: Bound on how long runner processes may take to import and get ready.
_READY_TIMEOUT = 120.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _worker(mode: str, plan: RunnerPlan, api_url: str, endpoint: str | None,
            policy_file: str | None, ready: Any, go: Any, start: Any, results: Any) -> None:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    errors = 0
    session = requests.Session()
    client: GitHubClient | None = None
    if mode == "local":
        client = GitHubClient.in_process(ClientSettings(
            api_url=api_url, token=plan.token, scope=REPO, cache_dir=Path(plan.cache_dir),
            policy_file=Path(policy_file) if policy_file else None))
    elif mode == "p2p":
        assert endpoint is not None
        client = GitHubClient.from_env({"GITHUB_P2P_ENDPOINT": endpoint,
                                        "GITHUB_TOKEN": plan.token, "GITHUB_REPOSITORY": REPO})
    ready.put(None)
    if go.wait(_READY_TIMEOUT + 60):
        # Every runner starts at the same moment (plus its own delay), whatever its import took.
        time.sleep(max(0.0, start.value + plan.delay - time.time()))
        for path in plan.paths:
            began = time.perf_counter()
            try:
                if client is None:
                    resp = session.get(api_url + path, timeout=30,
                                       headers={"Authorization": f"Bearer {plan.token}"})
                    errors += resp.status_code >= 400
                else:
                    answer = client.request("GET", path)
                    errors += answer.status >= 400
                    outcomes[answer.outcome.value] += 1
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - began)
    finished = time.time()
    if client is not None:
        client.close()
    results.put((latencies, errors, dict(outcomes), finished, _peak_rss_mb()))


def _runner_context() -> Any:
    """Runner processes fork from a server that imported the client once: 20 runners start in
    about a second instead of paying a second of imports each on a 2-core machine."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def run_workload(mode: str, sim: GitHubSimulator, plans: Sequence[RunnerPlan], *,
                 endpoints: Sequence[str] | None = None, policy_file: Path | None = None,
                 timeout: float = 600.0) -> ModeResult:
    """Run one runner process per plan in ``mode`` and measure what it cost.

    The processes import and connect first; the clock starts once all are ready, so every
    runner starts at the same moment (plus its plan's delay). The simulator's records are
    reset at that moment: ``upstream_calls`` and ``quota_used`` are this workload's alone.
    """
    ctx = _runner_context()
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_worker, args=(
        mode, plan, sim.url, endpoints[i] if endpoints else None,
        str(policy_file) if policy_file else None, ready, go, start, results))
        for i, plan in enumerate(plans)]
    for proc in procs:
        proc.start()
    try:
        try:
            for _ in procs:
                ready.get(timeout=_READY_TIMEOUT)
        except queue.Empty as exc:
            raise GitHubP2PError("runner processes did not get ready in time") from exc
        sim.reset_records()
        start.value = time.time() + 0.1
        go.set()
        collected = [results.get(timeout=timeout) for _ in procs]
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    finally:
        for proc in procs:
            proc.join(30)
    records = [r for r in sim.records() if not r.path.startswith("/_")]
    latencies = tuple(x for c in collected for x in c[0])
    outcomes: Counter[str] = Counter()
    for c in collected:
        outcomes.update(c[2])
    return ModeResult(mode, len(latencies), len(records), sum(r.counted for r in records),
                      latencies, max(c[3] for c in collected) - start.value,
                      sum(c[1] for c in collected), tuple(sorted(outcomes.items())),
                      tuple(c[4] for c in collected))


def run_mode(mode: str, sim: GitHubSimulator, runners: int, paths: list[str],
             workdir: Path, endpoints: list[str] | None = None) -> ModeResult:
    """The demo workload in ``mode``: each runner asks every resource twice, in its own order."""
    plans = []
    for i in range(runners):
        order = paths * 2
        random.Random(i).shuffle(order)
        plans.append(RunnerPlan(f"ghs_demo_runner_{i:04d}", tuple(order),
                                cache_dir=str(workdir / f"{mode}-{i}")))
    return run_workload(mode, sim, plans, endpoints=endpoints)


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
