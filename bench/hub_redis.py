"""One hub against two and three hubs sharing one Redis, side by side in one run (issue 16).

    .venv/bin/python -m bench.hub_redis [--load-runners 12] [--seconds 8] [--rounds 2]
                                        [--fleet-runners 10] [--resources 40]

Set-ups: ``1 hub (local)`` (the hub's own disk store and lease board), ``2 hubs (Redis)`` and
``3 hubs (Redis)`` (``github-p2p bootstrap --redis-url``, one fresh redis-server each). The
rounds alternate the set-ups so a noisy machine weighs on each alike; medians are reported.

1. **Hub throughput**: ``--load-runners`` processes, each a libp2p runner host linked to one
   hub (process *i* to hub *i mod n*) with 16 concurrent lease requests on 500 entries the
   fleet holds. Every process connects first; then all lease in one shared wall-clock window
   of ``--seconds``, and gets/s is what the hubs answered in it (their ``/_p2p/stats``).
2. **CPU per request**: each hub's utime+stime (``/proc``) over that window divided by the
   lease requests it answered in it; Redis's CPU likewise, per request of the whole fleet;
   and the cores the hubs kept busy.
3. **Upstream calls**: ``--fleet-runners`` runner daemons linked to every hub ask the same
   ``--resources`` resources at once through their endpoints (simulator, 50 ms per request);
   the GitHub calls counted by the simulator.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import time
from typing import Any

import requests
import trio

from bench.fleet_micro import lease_until, prefill
from bench.stats import cpu_seconds
from github_p2p.core.keys import derive_network_key
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.redisserver import RedisServer
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

SECRET = "bench-redis-secret-0001"
SETUPS = (("1 hub (local)", 1, False), ("2 hubs (Redis)", 2, True),
          ("3 hubs (Redis)", 3, True))


def _stats(node: NodeProcess) -> dict[str, Any]:
    with requests.Session() as session:
        session.trust_env = False
        result: dict[str, Any] = session.get(node.endpoint + "/_p2p/stats", timeout=30).json()
        return result


async def _synced_client(hub_addr: str, psk: bytes, ids: list[bytes], seconds: float,
                         concurrency: int, out: Any, go: Any, start_at: Any) -> None:
    """One runner host linked to ``hub_addr``: says it is connected, then leases ``ids``
    (hub hits) with ``concurrency`` requests in flight from ``start_at`` (wall clock, shared
    by every load process) for ``seconds``."""
    from github_p2p.p2p.host import HostSettings, running_host
    from github_p2p.p2p.link import HubLink
    from github_p2p.p2p.messages import Hello

    done = errors = 0
    async with running_host(HostSettings(psk=psk)) as running, trio.open_nursery() as nursery:
        link = HubLink(running, hub_addr, lambda rid: Hello(rid, "runner", "X64", "bench", "0"))
        await nursery.start(link.run)
        with trio.move_on_after(60):
            while not link.connected:
                await trio.sleep(0.05)
        out.put(("ready", link.connected))
        await trio.to_thread.run_sync(go.wait)
        await trio.sleep(max(0.0, start_at.value - time.time()))
        end = trio.current_time() + seconds

        async def worker(offset: int) -> None:
            nonlocal done, errors
            answered, failed = await lease_until(link, ids, offset, end)
            done, errors = done + answered, errors + failed

        async with trio.open_nursery() as load:
            for c in range(concurrency):
                load.start_soon(worker, c * 31)
        nursery.cancel_scope.cancel()
    out.put(("done", done, errors))


def _synced_process(*args: Any) -> None:
    trio.run(_synced_client, *args)


def synced_load(hubs: list[NodeProcess], psk: bytes, ids: list[bytes], seconds: float,
          processes: int, redis: RedisServer | None) -> dict[str, float]:
    """Load processes spread over ``hubs`` (process i to hub i mod n), all leasing in the same
    wall-clock window; what the hubs answered and the CPU they (and Redis) spent in it."""
    ctx = multiprocessing.get_context("spawn")
    out, go, start_at = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    workers = [ctx.Process(target=_synced_process,
                           args=(hubs[i % len(hubs)].multiaddr, psk, ids, seconds, 16, out, go,
                                 start_at))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    ready = [out.get(timeout=300) for _ in workers]
    assert all(message == ("ready", True) for message in ready), ready
    start_at.value = time.time() + 1.0
    go.set()
    pids = [h.process.pid for h in hubs] + (
        [redis.process.pid] if redis is not None and redis.process is not None else [])
    time.sleep(max(0.0, start_at.value - time.time()))
    cpu0, stats0 = [cpu_seconds(pid) for pid in pids], [_stats(h) for h in hubs]
    time.sleep(seconds)
    cpu1, stats1 = [cpu_seconds(pid) for pid in pids], [_stats(h) for h in hubs]
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    answered = [b["leases"] - a["leases"] for a, b in zip(stats0, stats1, strict=True)]
    cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    total = max(sum(answered), 1)
    out_figures = {
        "gets_per_s": sum(answered) / seconds,
        "client_replies_per_s": sum(r[1] for r in results) / seconds,
        "load_errors": sum(r[2] for r in results),
        "hub_cpu_ms_per_get": 1000 * sum(cpu[:len(hubs)]) / total,
        "hub_cpu_ms_per_get_max": max(1000 * c / max(a, 1)
                                      for c, a in zip(cpu, answered, strict=False)),
        "hub_cores_busy": sum(cpu[:len(hubs)]) / seconds,
        "gets_share_min": min(answered) / total,
    }
    if len(cpu) > len(hubs):
        out_figures["redis_cpu_ms_per_get"] = 1000 * cpu[-1] / total
    return out_figures


def _fleet_workload(fleet: LocalFleet, sim: GitHubSimulator, hubs: list[NodeProcess],
                    runners: int, resources: int) -> dict[str, float]:
    paths = [f"/repos/octo/hello/contents/w{i}.txt" for i in range(resources)]
    every_hub = ",".join(hub.multiaddr for hub in hubs)
    peers = [fleet.start_peer(wait=False, bootstrap=every_hub) for _ in range(runners)]
    for peer in peers:
        peer.wait_ready(180)
    sim.reset_records()

    def runner(index: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            failed = 0
            for path in paths[index % 2::2] + paths[1 - index % 2::2]:
                resp = session.get(peers[index].endpoint + path,
                                   headers={"Authorization": f"Bearer ghs_{index}"}, timeout=90)
                failed += resp.status_code != 200
            return failed

    with concurrent.futures.ThreadPoolExecutor(runners) as pool:
        failed = sum(pool.map(runner, range(runners)))
    upstream = sim.records()
    for peer in peers:
        peer.stop()
    return {"fleet_requests": runners * resources, "fleet_failed": failed,
            "upstream_calls": len(upstream), "unique_resources": resources}


def one_setup(hubs_wanted: int, on_redis: bool, sim: GitHubSimulator,
              args: argparse.Namespace) -> dict[str, float]:
    """Start the set-up, measure it, stop it."""
    redis = RedisServer().start() if on_redis else None
    try:
        with LocalFleet(sim.url, secret=SECRET) as fleet:
            extra = ["--redis-url", redis.url] if redis is not None else []
            hubs = [fleet.start_hub(wait=False, args=extra) for _ in range(hubs_wanted)]
            for hub in hubs:
                hub.wait_ready(180)
            psk = derive_network_key(SECRET)
            ids = [os.urandom(32) for _ in range(500)]
            trio.run(prefill, hubs[0].multiaddr, psk, ids)
            out = synced_load(hubs, psk, ids, args.seconds, args.load_runners, redis)
            out.update(_fleet_workload(fleet, sim, hubs, args.fleet_runners, args.resources))
            return out
    finally:
        if redis is not None:
            redis.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-runners", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fleet-runners", type=int, default=10)
    parser.add_argument("--resources", type=int, default=40)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in SETUPS}
    load_start = os.getloadavg()
    with GitHubSimulator(SimulatorConfig(latency=0.05, rate_limit=10**7)) as sim:
        for round_ in range(args.rounds):
            for name, hubs, on_redis in SETUPS:
                started = time.monotonic()
                runs[name].append(one_setup(hubs, on_redis, sim, args))
                print(f"round {round_ + 1} {name}: {runs[name][-1]} "
                      f"({time.monotonic() - started:.0f} s, load {os.getloadavg()[0]:.2f})",
                      flush=True)
    load_end = os.getloadavg()
    print(f"\nload average (1/5/15 min) at start {load_start[0]:.2f}/{load_start[1]:.2f}/"
          f"{load_start[2]:.2f}, at end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}; "
          f"{os.cpu_count()} CPUs\n")
    keys = list(dict.fromkeys(k for rs in runs.values() for r in rs for k in r))
    print("| measure (median of rounds) | " + " | ".join(runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for key in keys:
        cells = []
        for name in runs:
            values = [r[key] for r in runs[name] if key in r]
            cells.append(f"{statistics.median(values):.3f}" if values else "—")
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
