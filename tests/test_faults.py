"""Fault injection with real processes on loopback: the fleet keeps answering, right, and counted.

Each test breaks one thing for real (SIGKILL, a dead port, a GitHub outage, a corrupted or full
disk) and checks the invariants of :mod:`test_faults_support`: every request GitHub alone would
have answered is answered with GitHub's body, nothing stale goes out unmarked, and the runners'
statistics add up to what the simulator counted. The slow-reader fault lives in
``test_faults_slow_reader.py``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests
from libp2p.peer.id import ID
from test_faults_support import (
    START,
    Answers,
    assert_accounted,
    contents,
    figures,
    get,
    node_stats,
    run_parallel,
    start_peers,
    wait_until,
)

from github_p2p.p2p.identity import load_or_create_identity
from github_p2p.testing.localfleet import LocalFleet, NodeProcess, free_port
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow


@pytest.fixture
def sim():
    with GitHubSimulator(SimulatorConfig(latency=0.01, rate_limit=1_000_000)) as simulator:
        yield simulator


def long_ttl(tmp_path: Path, *rules: str) -> dict[str, str]:
    """Fleet environment with a policy keeping test resources fresh for an hour, so a slow
    machine never turns a hit into a revalidation; ``rules`` (YAML list items) go first."""
    policy = tmp_path / "policy.yml"
    policy.write_text("rules:\n" + "".join(rules)
                      + "  - pattern: '/contents/'\n    ttl: 3600\n")
    return {"GITHUB_P2P_POLICY": str(policy)}


def fetch_all(node: NodeProcess, paths: list[str], token: str, answers: Answers) -> list[str]:
    """GET every path in order through ``node``; returns the outcomes (each answer checked)."""
    return [answers.check(path, get(node, path, token)) for path in paths]


def test_hub_sigkilled_under_load_then_restarted(sim, tmp_path):
    warm, load, after = contents("warm", 8), contents("load", 45), contents("after", 20)
    answers = Answers(sim, warm + load + after)
    with LocalFleet(sim.url, workdir=tmp_path, extra_env=long_ttl(tmp_path)) as fleet:
        hub = fleet.start_hub(timeout=START)
        hub_id = hub.info["peer_id"]
        runners = start_peers(fleet, 3)
        sent = [0, 0, 0, 0]
        fetch_all(runners[0], warm, "ghs_r0", answers)  # shared at the hub before the crash
        sent[0] += len(warm)
        wait_until(lambda: node_stats(hub)["total_entries"] >= len(warm), 30, "warm entries")

        done = 0
        done_after_kill = 0
        killed = threading.Event()
        problems: list[str] = []
        lock = threading.Lock()

        def runner(index: int) -> None:
            nonlocal done, done_after_kill
            order = load[index * 15:] + load[:index * 15]  # overlapping, not in lockstep
            for path in order:
                problem = answers.problem(path, get(runners[index], path, f"ghs_r{index}"))
                with lock:
                    done += 1
                    done_after_kill += killed.is_set()
                    if problem:
                        problems.append(problem)

        threads = [threading.Thread(target=runner, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        wait_until(lambda: done >= 20, 120, "the load to get going")
        hub.kill()  # SIGKILL with requests in flight at the hub
        killed.set()
        for thread in threads:
            thread.join(300)
        assert not any(thread.is_alive() for thread in threads)
        assert problems == []
        assert done == 3 * len(load) and done_after_kill >= 20
        for index in range(3):
            sent[index] += len(load)

        restarted = fleet.start_hub(name=hub.name, timeout=START)
        assert restarted.info["peer_id"] == hub_id  # same identity: the secret stays valid
        newcomer = fleet.start_peer(wait=False)
        wait_until(lambda: all(node_stats(r)["connected_peers"] == 1 for r in runners), 60,
                   "the runners to reconnect to the restarted hub")
        newcomer.wait_ready(START)
        # What was shared before the crash survived it on the hub's disk.
        assert set(fetch_all(newcomer, warm, "ghs_new", answers)) == {"hit-peer"}
        sent[3] += len(warm)

        before = len(sim.records())
        outcomes = run_parallel([
            lambda i=i: fetch_all(runners[i], after, f"ghs_r{i}", answers) for i in range(3)])
        for index in range(3):
            sent[index] += len(after)
        # Coalescing is back: three runners asking at once cost one call per resource.
        assert len(sim.records()) - before == len(after)
        assert sum(o.count("hit-peer") for o in outcomes) == 2 * len(after)

        stats = [node_stats(node) for node in [*runners, newcomer]]
        assert_accounted(stats, len(sim.records()), sent)
        assert sum(s["fleet_errors"] for s in stats) >= 1  # the crash was noticed and counted
        assert sum(s["errors"] for s in stats) == 0
        figures("hub-sigkill", requests=sum(sent), answered_after_kill=done_after_kill,
                failed=0, upstream_calls=len(sim.records()),
                fleet_errors=sum(s["fleet_errors"] for s in stats),
                calls_after_restart=f"{len(after)} for {len(after)} resources x 3 runners")


def test_runner_killed_while_holding_fill_leases(sim, tmp_path):
    paths = contents("leases", 6)
    answers = Answers(sim, paths)
    fleet_wait, latency = 15.0, 3.0
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        hub = fleet.start_hub(timeout=START)
        holder, waiter = start_peers(fleet, 2)
        sim.set_latency(latency)  # the holder is still waiting on GitHub when it dies

        def ask_holder(path: str) -> None:
            # Its daemon is killed under it: the holder's own job dies with it.
            with contextlib.suppress(OSError):
                get(holder, path, "ghs_holder")

        holding = [threading.Thread(target=ask_holder, args=(p,), daemon=True) for p in paths]
        for thread in holding:
            thread.start()
        wait_until(lambda: node_stats(hub)["fills_in_flight"] == len(paths), 60,
                   "the holder to be granted every fill lease")
        results: dict[str, requests.Response] = {}

        def ask_waiter(path: str) -> None:
            results[path] = get(waiter, path, "ghs_waiter")

        waiting = [threading.Thread(target=ask_waiter, args=(p,)) for p in paths]
        for thread in waiting:
            thread.start()
        wait_until(lambda: node_stats(hub)["waiters"] == len(paths), 60,
                   "the second runner to wait for the holder's fills")
        killed_at = time.monotonic()
        holder.kill()
        for thread in waiting:
            thread.join(120)
        elapsed = time.monotonic() - killed_at
        for path in paths:
            assert answers.check(path, results[path]) == "miss"
        # The hub handed every lease on at once: nobody sat out the fleet wait.
        hub_stats = node_stats(hub)
        assert hub_stats["lease_takeovers"] == len(paths)
        assert hub_stats["lease_timeouts"] == 0
        assert hub_stats["fills_in_flight"] == 0
        assert elapsed < fleet_wait + latency + 15  # the bound, with slack for a busy machine

        wait_until(lambda: sum(r.token == "ghs_holder" for r in sim.records()) == len(paths),
                   30, "the dead holder's calls to reach the simulator")
        survivor = node_stats(waiter)
        by_waiter = sum(r.token == "ghs_waiter" for r in sim.records())
        assert_accounted([survivor], by_waiter, [len(paths)])
        assert survivor["misses"] == len(paths) and survivor["errors"] == 0
        figures("runner-sigkill", leases_held=len(paths), takeovers=hub_stats["lease_takeovers"],
                lease_timeouts=hub_stats["lease_timeouts"],
                waiter_done_after_kill_s=round(elapsed, 1),
                bound_s=fleet_wait + latency)


def test_dead_bootstrap_at_start_then_the_hub_comes_up(sim, tmp_path):
    port = free_port()
    identity = load_or_create_identity(tmp_path / "hub0" / "identity.key")
    hub_id = ID.from_pubkey(identity.public_key).to_base58()
    address = f"/ip4/127.0.0.1/tcp/{port}/p2p/{hub_id}"
    early, late = contents("early", 10), contents("late", 6)
    answers = Answers(sim, early + late)
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        first = fleet.start_peer(bootstrap=address, timeout=START)  # nothing listens there yet
        assert first.info["status"] == "degraded"
        assert set(fetch_all(first, early, "ghs_first", answers)) == {"miss"}

        hub = fleet.start_hub(name="hub0", port=port, timeout=START)
        assert hub.info["peer_id"] == hub_id
        wait_until(lambda: node_stats(first)["status"] == "active", 60,
                   "the runner to find the hub that came up")
        assert set(fetch_all(first, late, "ghs_first", answers)) == {"miss"}
        second = fleet.start_peer(timeout=START)
        assert set(fetch_all(second, late, "ghs_second", answers)) == {"hit-peer"}

        stats = [node_stats(first), node_stats(second)]
        assert_accounted(stats, len(sim.records()), [len(early) + len(late), len(late)])
        assert len(sim.records()) == len(early) + len(late)


def test_github_5xx_bursts_and_429_retry_after(sim, tmp_path):
    burst, limited, brief, down = (contents("burst", 8), contents("limited", 3),
                                   contents("brief", 1), contents("down", 1))
    answers = Answers(sim, burst + limited + brief)
    brief_ttl = "  - pattern: '/contents/brief/'\n    ttl: 1\n"
    with LocalFleet(sim.url, workdir=tmp_path, extra_env=long_ttl(tmp_path, brief_ttl)) as fleet:
        fleet.start_hub(timeout=START)
        a, b = start_peers(fleet, 2)
        sent = [0, 0]

        # A burst shorter than the retry budget (3 retries): nobody sees it.
        sim.fail_next(3)
        run_parallel([lambda: fetch_all(a, burst, "ghs_a", answers),
                      lambda: fetch_all(b, burst[::-1], "ghs_b", answers)])
        sent = [len(burst), len(burst)]
        assert sum(r.status == 502 for r in sim.records()) == 3

        # A secondary limit as a 429 with retry-after: waited out, then answered.
        sim.secondary_limit_next(2, retry_after=1, status=429)
        run_parallel([lambda: fetch_all(a, limited, "ghs_a", answers),
                      lambda: fetch_all(b, limited, "ghs_b", answers)])
        sent = [n + len(limited) for n in sent]
        assert sum(r.status == 429 for r in sim.records()) == 2

        # A burst longer than the budget: a recent entry is served, marked stale ...
        assert fetch_all(a, brief, "ghs_a", answers) == ["miss"]
        time.sleep(1.5)  # its 1 s TTL runs out
        sim.fail_next(4)
        resp = get(a, brief[0], "ghs_a")
        assert answers.check(brief[0], resp) == "stale"
        sent[0] += 2
        # ... and with nothing cached the caller gets GitHub's own 502, as without the fleet.
        sim.fail_next(4)
        resp = get(b, down[0], "ghs_b")
        assert resp.status_code == 502 and resp.headers["X-GitHub-P2P-Cache"] == "miss"
        sent[1] += 1
        assert sim.records()[-1].status == 502

        stats = [node_stats(a), node_stats(b)]
        assert_accounted(stats, len(sim.records()), sent)
        assert stats[0]["stale_served"] == 1 and stats[0]["errors"] == 0
        assert stats[1]["errors"] == 1
        figures("github-faults", requests=sum(sent), upstream_calls=len(sim.records()),
                answered_5xx=sum(r.status == 502 for r in sim.records()),
                answered_429=sum(r.status == 429 for r in sim.records()),
                stale_served=stats[0]["stale_served"], errors_passed_on=stats[1]["errors"])


def _flip_stored_bodies(db: Path, count: int) -> int:
    """Flip the last byte (inside the body) of ``count`` entries of a stopped peer's store."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rowid, value FROM Cache WHERE value IS NOT NULL "
                            "ORDER BY rowid LIMIT ?", (count,)).fetchall()
        for rowid, value in rows:
            damaged = bytes(value[:-1]) + bytes([value[-1] ^ 0x01])
            conn.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (damaged, rowid))
    return len(rows)


def _overwrite(path: Path) -> None:
    size = max(path.stat().st_size, 4096)
    with open(path, "r+b") as handle:
        handle.write(os.urandom(size))


def test_corrupted_local_cache(sim, tmp_path):
    paths, extra = contents("corrupt", 12), contents("extra", 4)
    answers = Answers(sim, paths + extra)
    with LocalFleet(sim.url, workdir=tmp_path, extra_env=long_ttl(tmp_path)) as fleet:
        fleet.start_hub(timeout=START)
        peer = fleet.start_peer(name="runner", timeout=START)
        local = tmp_path / "runner" / "cache" / "local"
        assert set(fetch_all(peer, paths, "ghs_r", answers)) == {"miss"}
        lives = [node_stats(peer)]
        peer.stop()

        # 1. Entries damaged inside a sound database: refused by their digest, never served.
        assert _flip_stored_bodies(local / "cache.db", 4) == 4
        peer = fleet.start_peer(name="runner", timeout=START)
        outcomes = fetch_all(peer, paths, "ghs_r", answers)
        assert outcomes.count("hit-peer") == 4 and outcomes.count("hit-local") == 8
        lives.append(node_stats(peer))
        peer.stop()

        # 2. The whole database is garbage at start: moved aside, the runner starts empty.
        _overwrite(local / "cache.db")
        peer = fleet.start_peer(name="runner", timeout=START)
        assert set(fetch_all(peer, paths, "ghs_r", answers)) == {"hit-peer"}
        assert list(local.parent.glob("local.corrupt-*"))

        # 3. The database is overwritten under a running daemon: reads and writes fail, the
        #    requests do not.
        for name in ("cache.db", "cache.db-wal"):
            if (local / name).exists():
                _overwrite(local / name)
        outcomes = fetch_all(peer, paths + extra, "ghs_r", answers)
        assert outcomes[len(paths):] == ["miss"] * len(extra)
        lives.append(node_stats(peer))

        sent = [len(paths), len(paths), 2 * len(paths) + len(extra)]
        assert_accounted(lives, len(sim.records()), sent)
        assert len(sim.records()) == len(paths) + len(extra)  # the fleet covered every loss
        assert all(life["errors"] == 0 for life in lives)
        figures("corrupt-cache", requests=sum(sent), upstream_calls=len(sim.records()),
                damaged_entries_refused=4, errors=0)


def _limit_file_size(node: NodeProcess, directory: Path, margin: int) -> None:
    """RLIMIT_FSIZE on a running node: no file it writes may grow past the current largest
    (its log included) plus ``margin`` bytes. Writes past it fail with EFBIG, as a full disk
    fails them with ENOSPC (CPython ignores SIGXFSZ, so the process is not killed)."""
    largest = max([f.stat().st_size for f in directory.rglob("*") if f.is_file()]
                  + [node.log_file.stat().st_size])
    limit = largest + margin
    resource.prlimit(node.process.pid, resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_runner_and_hub(sim, tmp_path):
    first, second = contents("full", 40), contents("hubfull", 12)
    answers = Answers(sim, first + second)
    with LocalFleet(sim.url, workdir=tmp_path, extra_env=long_ttl(tmp_path)) as fleet:
        hub = fleet.start_hub(timeout=START)
        a, b = start_peers(fleet, 2)
        _limit_file_size(a, tmp_path / a.name / "cache", 64 * 1024)

        # The runner's disk fills up: it keeps answering (from its memory front or the hub),
        # and its entries still reach the hub, where the other runner finds them.
        assert set(fetch_all(a, first, "ghs_a", answers)) == {"miss"}
        assert "local cache write failed" in a.log_file.read_text()
        outcomes = fetch_all(a, first, "ghs_a", answers)
        assert set(outcomes) <= {"hit-local", "hit-peer"}
        from_hub = fetch_all(b, first, "ghs_b", answers)
        assert set(from_hub) == {"hit-peer"}
        assert len(sim.records()) == len(first)  # nothing was asked of GitHub twice

        # The hub's disk fills up: fills are lost, coalescing degrades, answers do not.
        _limit_file_size(hub, tmp_path / hub.name / "cache", 16 * 1024)
        run_parallel([lambda: fetch_all(a, second, "ghs_a", answers),
                      lambda: fetch_all(b, second, "ghs_b", answers)])
        assert "hub store write failed" in hub.log_file.read_text()
        assert hub.process.poll() is None

        stats = [node_stats(a), node_stats(b)]
        assert_accounted(stats, len(sim.records()),
                         [2 * len(first) + len(second), len(first) + len(second)])
        assert all(s["errors"] == 0 for s in stats)
        figures("disk-full", requests=sum(s["requests"] for s in stats),
                upstream_calls=len(sim.records()),
                local_writes_refused=a.log_file.read_text().count("local cache write failed"),
                hub_writes_refused=hub.log_file.read_text().count("hub store write failed"),
                second_runner_from_hub=from_hub.count("hit-peer"), errors=0)
