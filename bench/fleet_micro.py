"""Fleet micro-benchmarks (issue: the fleet over libp2p), all real processes on loopback.

    .venv/bin/python -m bench.fleet_micro [--runners 5] [--resources 200] [--load-runners 10]
                                          [--rss-runners 50] [--seconds 5]

1. readiness: time from spawning ``github-p2p peer`` to its ready file (hub already up);
2. peer hit through the local endpoint: runner 0 fills the hub, runners 1..N-1 read every
   resource once through their own endpoint (each read is a local miss and a hub hit);
   a local hit through the endpoint is measured in the same run for comparison;
3. hub throughput: ``--load-runners`` processes, each a libp2p host with a hub link and 16
   concurrent lease requests on entries the hub holds, for ``--seconds``;
4. RSS: a runner daemon after the peer-hit phase, and the hub with ``--rss-runners`` libp2p
   runner hosts connected at once.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import multiprocessing
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
import trio

from bench.stats import percentile, summary_ms
from github_p2p.core.keys import derive_network_key
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.procstat import rss_mb
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

if TYPE_CHECKING:  # libp2p loads only in the load processes
    from github_p2p.p2p.link import HubLink

SECRET = "bench-fleet-secret-0001"


def timed_get(endpoint: str, path: str, token: str) -> tuple[float, str]:
    session = _session()
    t = time.perf_counter()
    resp = session.get(endpoint + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    elapsed = time.perf_counter() - t
    resp.raise_for_status()
    return elapsed, resp.headers["X-GitHub-P2P-Cache"]


_SESSIONS: dict[int, requests.Session] = {}


def _session() -> requests.Session:
    key = threading.get_ident()
    if key not in _SESSIONS:
        _SESSIONS[key] = requests.Session()
        _SESSIONS[key].trust_env = False  # skips proxy/netrc lookups on every call
    return _SESSIONS[key]


# -- hub load clients (separate processes) ---------------------------------------------------

async def lease_until(link: HubLink, ids: list[bytes], offset: int, end: float
                      ) -> tuple[int, int]:
    """Lease ``ids`` (hub hits) one at a time on ``link``, starting at ``offset``, until trio
    time ``end``: how many were answered and how many failed."""
    from github_p2p.p2p.messages import Lease

    answered = failed = 0
    i = offset
    while trio.current_time() < end:
        ident = ids[i % len(ids)]
        i += 7
        try:
            await link.call(functools.partial(Lease, entry_id=ident, wait=0.0), 10)
            answered += 1
        except Exception:  # counted: the benchmark reports errors, it does not stop
            failed += 1
    return answered, failed


async def _load_client(hub_addr: str, psk: bytes, ids: list[bytes], seconds: float,
                       hosts: int, concurrency: int, hold: float) -> tuple[int, int]:
    from github_p2p.p2p.host import HostSettings, running_host
    from github_p2p.p2p.link import HubLink
    from github_p2p.p2p.messages import Hello

    done = errors = 0
    async with trio.open_nursery() as nursery:
        links: list[HubLink] = []

        async def one_host() -> None:
            async with running_host(HostSettings(psk=psk)) as running:
                link = HubLink(running, hub_addr, lambda rid: Hello(rid, "runner", "X64",
                                                                   "bench", "0"))
                links.append(link)
                async with trio.open_nursery() as inner:
                    await inner.start(link.run)
                    await trio.sleep(seconds + hold + 30)
                    inner.cancel_scope.cancel()

        for _ in range(hosts):
            nursery.start_soon(one_host)
        with trio.move_on_after(30):
            while len(links) < hosts or not all(link.connected for link in links):
                await trio.sleep(0.05)
        await trio.sleep(hold)
        end = trio.current_time() + seconds

        async def worker(link: HubLink, offset: int) -> None:
            nonlocal done, errors
            answered, failed = await lease_until(link, ids, offset, end)
            done, errors = done + answered, errors + failed

        if seconds > 0:
            async with trio.open_nursery() as load:
                for n, link in enumerate(links):
                    for c in range(concurrency):
                        load.start_soon(worker, link, n * 31 + c)
        nursery.cancel_scope.cancel()
    return done, errors


def _load_process(hub_addr: str, psk: bytes, ids: list[bytes], seconds: float, hosts: int,
                  concurrency: int, hold: float, out: Any) -> None:
    out.put(trio.run(_load_client, hub_addr, psk, ids, seconds, hosts, concurrency, hold))


async def prefill(hub_addr: str, psk: bytes, ids: list[bytes]) -> None:
    from github_p2p.p2p.host import HostSettings, running_host
    from github_p2p.p2p.link import HubLink
    from github_p2p.p2p.messages import Hello, Put

    async with running_host(HostSettings(psk=psk)) as running, trio.open_nursery() as nursery:
        link = HubLink(running, hub_addr, lambda rid: Hello(rid, "runner", "X64", "fill", "0"))
        await nursery.start(link.run)
        for ident in ids:
            await link.call(functools.partial(
                Put, entry_id=ident, envelope=os.urandom(600), fresh_ttl=3600, keep_ttl=3600), 10)
        nursery.cancel_scope.cancel()


def run_clients(hub_addr: str, psk: bytes, ids: list[bytes], seconds: float, procs: int,
                hosts_per_proc: int, concurrency: int, hold: float = 0.0) -> tuple[int, int]:
    """Start load processes; returns (replies, errors) summed."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_load_process, args=(hub_addr, psk, ids, seconds,
                                                       hosts_per_proc, concurrency, hold, out))
               for _ in range(procs)]
    for w in workers:
        w.start()
    results = [out.get(timeout=seconds + hold + 180) for _ in workers]
    for w in workers:
        w.join(30)
    return sum(r[0] for r in results), sum(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runners", type=int, default=5)
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--load-runners", type=int, default=10)
    parser.add_argument("--rss-runners", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    paths = [f"/repos/octo/hello/contents/f{i}.txt" for i in range(args.resources)]
    psk = derive_network_key(SECRET)
    with GitHubSimulator(SimulatorConfig(rate_limit=10**7)) as sim, \
            LocalFleet(sim.url, secret=SECRET) as fleet:
        hub = fleet.start_hub()
        hub_pid = hub.process.pid
        print(f"hub RSS idle: {rss_mb(hub_pid):.0f} MiB")

        ready = []
        for _ in range(args.runners):
            t = time.perf_counter()
            fleet.start_peer()
            ready.append(time.perf_counter() - t)
        print(f"runner ready after spawn (s): min {min(ready):.2f} median "
              f"{percentile(ready, 50):.2f} max {max(ready):.2f}  (n={len(ready)})")

        peers = fleet.peers
        for path in paths:
            timed_get(peers[0].endpoint, path, "ghs_filler")
        half = len(paths) // 2

        def reader(index: int, chosen: list[str]) -> tuple[list[float], list[float]]:
            hits, again = [], []
            for path in chosen:
                elapsed, outcome = timed_get(peers[index].endpoint, path, f"ghs_r{index}")
                assert outcome == "hit-peer", outcome
                hits.append(elapsed)
                elapsed, outcome = timed_get(peers[index].endpoint, path, f"ghs_r{index}")
                assert outcome == "hit-local", outcome
                again.append(elapsed)
            return hits, again

        # One step at a time (what a workflow step sees), then every reader at once.
        seq_peer: list[float] = []
        seq_local: list[float] = []
        for index in range(1, args.runners):
            hits, again = reader(index, paths[:half])
            seq_peer += hits
            seq_local += again
        par_peer: list[float] = []
        with concurrent.futures.ThreadPoolExecutor(args.runners - 1) as pool:
            for hits, _ in pool.map(lambda i: reader(i, paths[half:]), range(1, args.runners)):
                par_peer += hits
        print(f"peer hit via local endpoint, sequential  p50/p95/p99 ms: {summary_ms(seq_peer)} "
              f"(n={len(seq_peer)})")
        print(f"local hit via local endpoint, sequential p50/p95/p99 ms: "
              f"{summary_ms(seq_local)}")
        print(f"peer hit via local endpoint, {args.runners - 1} readers at once p50/p95/p99 ms: "
              f"{summary_ms(par_peer)} (n={len(par_peer)}, one client process)")
        print(f"upstream calls: {len(sim.records())} for {len(paths)} resources")
        print(f"runner RSS: {max(rss_mb(p.process.pid) for p in peers):.0f} MiB (max of "
              f"{len(peers)})")

        ids = [os.urandom(32) for _ in range(500)]
        trio.run(prefill, hub.multiaddr, psk, ids)
        replies, errors = run_clients(hub.multiaddr, psk, ids, args.seconds,
                                      args.load_runners, 1, 16)
        print(f"hub throughput: {replies / args.seconds:.0f} gets/s from {args.load_runners} "
              f"runners x 16 concurrent ({errors} errors)")

        procs = 5
        per = max(1, args.rss_runners // procs)
        target = procs * per
        sample: dict[str, float] = {}

        def sampler() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                stats = requests.get(hub.endpoint + "/_p2p/stats", timeout=5).json()
                if stats["connected_peers"] >= target:
                    sample.update(rss=rss_mb(hub_pid), peers=stats["connected_peers"])
                    return
                time.sleep(0.5)

        watcher = threading.Thread(target=sampler)
        watcher.start()
        run_clients(hub.multiaddr, psk, ids, 0, procs, per, 1, hold=30)
        watcher.join()
        print(f"hub RSS with {sample.get('peers', 0):.0f} runner hosts connected: "
              f"{sample.get('rss', float('nan')):.0f} MiB")

if __name__ == "__main__":
    main()
