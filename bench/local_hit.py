"""Benchmark: a local cache hit through ``GitHubClient`` (in-process engine, diskcache).

    .venv/bin/python -m bench.local_hit [--n 5000]

Compares, in one run, a hit (`gh.get` of a cached resource) with a direct GET to the
simulator (no latency injected), so the ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests

from bench.stats import percentile, summary_ms
from github_p2p import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, GitHubSimulator(SimulatorConfig()) as sim:
        gh = GitHubClient.in_process(ClientSettings(api_url=sim.url, token="ghs_bench",
                                                    scope="octo/hello", cache_dir=Path(tmp)))
        gh.get("/repos/octo/hello")
        hits, direct = [], []
        session = requests.Session()
        for _ in range(args.n):
            t = time.perf_counter()
            gh.get("/repos/octo/hello")
            hits.append(time.perf_counter() - t)
            t = time.perf_counter()
            session.get(sim.url + "/repos/octo/hello",
                        headers={"Authorization": "Bearer ghs_bench"})
            direct.append(time.perf_counter() - t)
        stats = gh.stats()
        gh.close()
    assert stats["local_hits"] == args.n
    print(f"local hit via GitHubClient   p50/p95/p99 ms: {summary_ms(hits)}  (n={args.n})")
    print(f"direct GET to simulator      p50/p95/p99 ms: {summary_ms(direct)}")
    print(f"ratio direct/hit at p50: {percentile(direct, 50) / percentile(hits, 50):.1f}x")


if __name__ == "__main__":
    main()
