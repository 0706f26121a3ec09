"""Micro-benchmarks of the fleet benchmark, on a running fleet (real processes, loopback).

Reuses the helpers of :mod:`bench.fleet_micro` (timed GETs through a daemon's endpoint, hub
load processes, hub prefill); adds a local hit through the in-process client (as
:mod:`bench.local_hit` measures it) and a 1 MiB entry carried through the hub.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from bench.fleet_micro import prefill, run_clients, timed_get
from bench.stats import percentile
from github_p2p import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.core.keys import derive_network_key
from github_p2p.errors import GitHubP2PError
from github_p2p.testing.localfleet import NodeProcess
from github_p2p.testing.simulator import GitHubSimulator

__all__ = ["MicroResult", "run_micro"]


@dataclass(frozen=True)
class MicroResult:
    """One micro-benchmark: latency percentiles (ms) or a throughput, and what it measured."""

    name: str
    samples: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    per_second: float | None = None
    note: str = ""

    @classmethod
    def of(cls, name: str, seconds: Sequence[float], note: str = "") -> MicroResult:
        """Percentiles of latency samples given in seconds."""
        p50, p95, p99 = (percentile(seconds, q) * 1000 for q in (50, 95, 99))
        return cls(name, len(seconds), p50, p95, p99, note=note)


def _local_hit(api_url: str, n: int) -> MicroResult:
    with tempfile.TemporaryDirectory(prefix="bench-local-hit-") as tmp:
        gh = GitHubClient.in_process(ClientSettings(api_url=api_url, token="ghs_bench_local",
                                                    scope="octo/hello", cache_dir=Path(tmp)))
        try:
            gh.get("/repos/octo/micro")
            samples = []
            for _ in range(n):
                began = time.perf_counter()
                gh.get("/repos/octo/micro")
                samples.append(time.perf_counter() - began)
            hits = gh.stats()["local_hits"]
        finally:
            gh.close()
    if hits != n:
        raise GitHubP2PError(f"local hit benchmark: {hits} hits for {n} requests")
    return MicroResult.of("local hit, in-process `GitHubClient`", samples, "diskcache")


def _through_fleet(filler: NodeProcess, reader: NodeProcess, paths: Sequence[str],
                   ) -> tuple[list[float], list[float], list[float]]:
    """Filler misses each path (GitHub); reader then gets it from the hub, then locally."""
    misses: list[float] = []
    peer: list[float] = []
    local: list[float] = []
    for path in paths:
        for node, token, sink, want in ((filler, "ghs_bench_fill", misses, "miss"),
                                        (reader, "ghs_bench_read", peer, "hit-peer"),
                                        (reader, "ghs_bench_read", local, "hit-local")):
            elapsed, outcome = timed_get(node.endpoint, path, token)
            if outcome != want:
                raise GitHubP2PError(f"{path}: expected {want}, got {outcome}")
            sink.append(elapsed)
    return misses, peer, local


def _big_body(size: int, seed: int) -> dict[str, object]:
    # Random hex: neither the hub nor the sealing may profit from compressible content.
    return {"name": f"big-{seed}.json", "encoding": "hex",
            "content": os.urandom(size // 2).hex()}


def run_micro(sim: GitHubSimulator, hub: NodeProcess, peers: Sequence[NodeProcess], secret: str,
              *, local_hits: int = 2000, small: int = 100, big: int = 8,
              load_runners: int = 10, load_seconds: float = 5.0,
              log: Callable[[str], None] = print) -> list[MicroResult]:
    """Run every micro-benchmark with GitHub's latency set to 0 (our own overheads alone)."""
    if len(peers) < 2:
        raise GitHubP2PError("the micro-benchmarks need a fleet of at least two runners")
    latency = sim.latency
    sim.set_latency(0.0)
    try:
        results = [_local_hit(sim.url, local_hits)]
        log("  micro: local hit done")
        paths = [f"/repos/octo/micro/contents/f{i}.txt" for i in range(small)]
        misses, peer, local = _through_fleet(peers[0], peers[1], paths)
        results += [
            MicroResult.of("miss through the local endpoint (GitHub at 0 ms)", misses,
                           "daemon → hub lease → GitHub → hub put"),
            MicroResult.of("peer hit through the local endpoint", peer,
                           "daemon → hub (libp2p) → unseal"),
            MicroResult.of("local hit through the local endpoint", local, "daemon's diskcache"),
        ]
        log("  micro: endpoint hits done")
        big_paths = [f"/repos/octo/micro/contents/big{i}.json" for i in range(big)]
        for i, path in enumerate(big_paths):
            sim.set_resource(path, _big_body(1 << 20, i))
        misses, peer, local = _through_fleet(peers[0], peers[1], big_paths)
        results += [
            MicroResult.of("1 MiB entry: miss (GitHub at 0 ms, then sealed to the hub)", misses),
            MicroResult.of("1 MiB entry: peer hit through the hub", peer,
                           "the whole sealed entry over libp2p"),
            MicroResult.of("1 MiB entry: local hit", local),
        ]
        log("  micro: 1 MiB entries done")
        psk = derive_network_key(secret)
        ids = [os.urandom(32) for _ in range(500)]
        trio.run(prefill, hub.multiaddr, psk, ids)
        replies, errors = run_clients(hub.multiaddr, psk, ids, load_seconds, load_runners, 1, 16)
        results.append(MicroResult(
            f"hub gets/s from {load_runners} runners", replies,
            per_second=replies / load_seconds,
            note=f"{load_runners} processes x 16 concurrent leases, {load_seconds:.0f} s, "
                 f"{errors} errors"))
        log("  micro: hub throughput done")
    finally:
        sim.set_latency(latency)
    return results
