"""The local store (real diskcache on disk) and rendezvous hashing."""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter

from github_p2p.cache.localstore import LocalStore
from github_p2p.core.entry import CacheEntry
from github_p2p.p2p.rendezvous import rank_hubs


def entry(n: int = 0, body: bytes = b"{}") -> CacheEntry:
    return CacheEntry(200, (), body, float(n), float(n) + 60)


def test_put_get_invalidate(tmp_path):
    store = LocalStore(tmp_path / "c")
    store.put("a", entry(1), keep_for=100, tag="res1")
    store.put("b", entry(2), keep_for=100, tag="res1")
    store.put("c", entry(3), keep_for=100, tag="res2")
    assert store.get("a") == entry(1)
    assert store.invalidate("res1") == 2
    assert store.get("a") is None and store.get("c") == entry(3)
    store.close()


def test_size_bound_evicts(tmp_path):
    store = LocalStore(tmp_path / "c", size_limit=256 * 1024)
    for i in range(64):
        store.put(f"k{i}", entry(i, os.urandom(32 * 1024)), keep_for=100, tag="t")
    store._cache.cull()
    assert store.volume() <= 512 * 1024
    assert store.get("k63") is not None  # the newest survives
    store.close()


def test_corrupted_directory_is_moved_aside(tmp_path):
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not sqlite" * 100)
    store = LocalStore(directory)
    assert store.corruptions == 1
    store.put("a", entry(), keep_for=10, tag="t")
    assert store.get("a") == entry()
    assert any(p.name.startswith("c.corrupt-") for p in tmp_path.iterdir())
    store.close()


def test_damaged_entry_is_dropped_not_served(tmp_path):
    store = LocalStore(tmp_path / "c")
    store._cache.set("bad", b"\x00\x00\x00\x02{}garbage")
    assert store.get("bad") is None
    assert store.corruptions == 1
    store.close()


def _writer(directory: str, worker: int) -> None:
    store = LocalStore(directory)
    for i in range(50):
        store.put(f"w{worker}-{i}", entry(i), keep_for=100, tag=f"w{worker}")
    store.close()


def test_several_processes_write_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "c"), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = LocalStore(tmp_path / "c")
    assert len(store) == 200
    store.close()


def test_rendezvous_is_stable_and_balanced():
    hubs = ["hubA", "hubB", "hubC"]
    ids = [i.to_bytes(4, "big") * 8 for i in range(3000)]
    first = Counter(rank_hubs(hubs, i)[0] for i in ids)
    assert all(800 < n < 1200 for n in first.values())
    # Removing a hub only moves the ids it owned.
    for i in ids[:500]:
        ranked = rank_hubs(hubs, i)
        without = rank_hubs([h for h in hubs if h != "hubB"], i)
        assert without[0] == (ranked[0] if ranked[0] != "hubB" else ranked[1])
