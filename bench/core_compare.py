"""The cache core, side by side with an earlier design of it, in one run (issue: the cache core).

    .venv/bin/python -m bench.core_compare --before /work/before [--rounds 2] [--n 300]

``--before`` is a checkout of the earlier commit (``git worktree add /work/before <commit>``).
Its nodes run from that checkout (``PYTHONPATH``) with this checkout's harness; the wire
protocol is the same, so the same load clients drive both hubs. The rounds alternate
before/after so a noisy machine weighs on both alike. Measured per design:

1. a local hit through the runner's endpoint (HTTP GET of a resource the daemon holds);
2. a peer hit through the endpoint (the daemon misses, the hub has it);
3. the hub's CPU per get and its throughput: ``--load-runners`` processes of libp2p runners,
   16 concurrent leases each, on entries the hub holds; all connect first, then lease in one
   shared window of ``--seconds`` (as :mod:`bench.hub_redis` measures);
4. a local hit through the in-process ``GitHubClient`` (a subprocess on that checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

from bench.fleet_micro import prefill, timed_get
from bench.hub_redis import synced_load
from bench.stats import percentile
from github_p2p.core.keys import derive_network_key
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

SECRET = "bench-core-secret-0001"
_IN_PROCESS = """
import json, sys, tempfile, time
from pathlib import Path
from github_p2p import GitHubClient
from github_p2p.config import ClientSettings
url, n = sys.argv[1], int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    gh = GitHubClient.in_process(ClientSettings(api_url=url, token="ghs_bench",
                                                scope="octo/hello", cache_dir=Path(tmp)))
    gh.get("/repos/octo/hello")
    times = []
    for _ in range(n):
        t = time.perf_counter()
        gh.get("/repos/octo/hello")
        times.append(time.perf_counter() - t)
    gh.close()
print(json.dumps(times))
"""


def one_design(code: Path, sim: GitHubSimulator, args: argparse.Namespace) -> dict[str, float]:
    paths = [f"/repos/octo/hello/contents/c{i}.txt" for i in range(args.n)]
    out: dict[str, float] = {}
    with LocalFleet(sim.url, secret=SECRET, code=code) as fleet:
        hub = fleet.start_hub()
        filler, reader = fleet.start_peer(), fleet.start_peer()
        for path in paths:
            timed_get(filler.endpoint, path, "ghs_filler")
        peer, local = [], []
        for path in paths:
            elapsed, outcome = timed_get(reader.endpoint, path, "ghs_reader")
            assert outcome == "hit-peer", outcome
            peer.append(elapsed)
            elapsed, outcome = timed_get(reader.endpoint, path, "ghs_reader")
            assert outcome == "hit-local", outcome
            local.append(elapsed)
        out["peer_hit_p50_ms"] = percentile(peer, 50) * 1000
        out["local_hit_endpoint_p50_ms"] = percentile(local, 50) * 1000

        psk = derive_network_key(SECRET)
        ids = [os.urandom(32) for _ in range(500)]
        trio.run(prefill, hub.multiaddr, psk, ids)
        # Every load process connects first, then all lease in one shared window: gets/s and
        # CPU are what the hub answered and spent in that window (bench.hub_redis's method).
        load = synced_load([hub], psk, ids, args.seconds, args.load_runners, None)
        out["hub_gets_per_s"] = load["gets_per_s"]
        out["hub_cpu_ms_per_get"] = load["hub_cpu_ms_per_get"]
        out["hub_errors"] = load["load_errors"]
    # From the checkout itself: ``python -c`` puts the working directory first on the path.
    result = subprocess.run([sys.executable, "-c", _IN_PROCESS, sim.url, str(args.n * 5)],
                            env={**os.environ, "PYTHONPATH": str(code)}, cwd=code,
                            capture_output=True, text=True, check=True, timeout=300)
    out["in_process_local_hit_p50_ms"] = percentile(json.loads(result.stdout), 50) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--load-runners", type=int, default=10)
    args = parser.parse_args()
    after = Path(__file__).resolve().parents[1]
    designs = {"before": args.before.resolve(), "after": after}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in designs}
    for name, code in designs.items():
        where = subprocess.run(
            [sys.executable, "-c", "import github_p2p; print(github_p2p.__version__, "
             "github_p2p.__file__)"], env={**os.environ, "PYTHONPATH": str(code)}, cwd=code,
            capture_output=True, text=True, check=True).stdout.strip()
        print(f"{name}: {where}")
    load = os.getloadavg()[0]
    with GitHubSimulator(SimulatorConfig(rate_limit=10**7)) as sim:
        for round_ in range(args.rounds):
            for name, code in designs.items():
                t = time.monotonic()
                runs[name].append(one_design(code, sim, args))
                print(f"round {round_ + 1} {name}: {runs[name][-1]} "
                      f"({time.monotonic() - t:.0f} s)", flush=True)
    print(f"\nload average at start {load:.2f}, at end {os.getloadavg()[0]:.2f}\n")
    print("| measure | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for key in runs["after"][0]:
        b = statistics.median(r[key] for r in runs["before"])
        a = statistics.median(r[key] for r in runs["after"])
        print(f"| {key} | {b:.3f} | {a:.3f} | {a / b if b else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
