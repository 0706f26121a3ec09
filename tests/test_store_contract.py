"""One contract, every store: the runner's local store, the hub's blind disk store, and the
hub's async envelope stores (memory, and disk behind a memory front).

Each store is wrapped in a small adapter speaking bytes by id, so one suite states what every
store promises: what is put is got back, tags invalidate every variant, deletes are exact,
expired entries are gone, and a bound is kept.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import pytest
import trio

from github_p2p.cache.localstore import LocalStore
from github_p2p.core.entry import CacheEntry
from github_p2p.nodes.hub.blindstore import BlindStore
from github_p2p.nodes.hub.envelopes import DiskEnvelopeStore, EnvelopeStore, MemoryEnvelopeStore


class Adapter(Protocol):
    async def put(self, ident: bytes, value: bytes, *, keep: float, tag: bytes | None) -> None: ...
    async def get(self, ident: bytes) -> bytes | None: ...
    async def delete(self, ident: bytes) -> None: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


class LocalAdapter:
    def __init__(self, directory: Path, size_limit: int) -> None:
        self.store = LocalStore(directory, size_limit=size_limit)

    async def put(self, ident: bytes, value: bytes, *, keep: float, tag: bytes | None) -> None:
        now = time.time()
        entry = CacheEntry(200, (), value, now, now + keep)
        self.store.put(ident.hex(), entry, keep_for=keep, tag=tag.hex() if tag else "")

    async def get(self, ident: bytes) -> bytes | None:
        entry = self.store.get(ident.hex())
        return entry.body if entry is not None else None

    async def delete(self, ident: bytes) -> None:
        self.store.invalidate(ident.hex())
        self.store.delete(ident.hex())

    def count(self) -> int:
        return len(self.store)

    def close(self) -> None:
        self.store.close()


class BlindAdapter:
    def __init__(self, directory: Path, size_limit: int) -> None:
        self.store = BlindStore(directory, size_limit=size_limit)

    async def put(self, ident: bytes, value: bytes, *, keep: float, tag: bytes | None) -> None:
        self.store.put(ident, value, fresh_ttl=keep, keep_ttl=keep, tag=tag)

    async def get(self, ident: bytes) -> bytes | None:
        stored = self.store.get(ident)
        return stored.envelope if stored is not None else None

    async def delete(self, ident: bytes) -> None:
        self.store.delete(ident)

    def count(self) -> int:
        return len(self.store)

    def close(self) -> None:
        self.store.close()


class EnvelopeAdapter:
    def __init__(self, store: EnvelopeStore) -> None:
        self.store = store

    async def put(self, ident: bytes, value: bytes, *, keep: float, tag: bytes | None) -> None:
        await self.store.put(ident, value, fresh_ttl=keep, keep_ttl=keep, tag=tag)

    async def get(self, ident: bytes) -> bytes | None:
        stored = await self.store.get(ident)
        return stored.envelope if stored is not None else None

    async def delete(self, ident: bytes) -> None:
        await self.store.delete(ident)

    def count(self) -> int:
        return len(self.store)

    def close(self) -> None:
        self.store.close()


LIMIT = 4 * 1024 * 1024


@pytest.fixture(params=["local", "blind", "envelopes-memory", "envelopes-disk"])
async def store(request, tmp_path) -> AsyncIterator[Adapter]:
    made: Adapter
    if request.param == "local":
        made = LocalAdapter(tmp_path / "s", LIMIT)
    elif request.param == "blind":
        made = BlindAdapter(tmp_path / "s", LIMIT)
    elif request.param == "envelopes-memory":
        made = EnvelopeAdapter(MemoryEnvelopeStore(size_limit=LIMIT))
    else:
        made = EnvelopeAdapter(DiskEnvelopeStore(tmp_path / "s", size_limit=LIMIT,
                                                 hot_bytes=1024))
    yield made
    made.close()


def ident(n: int) -> bytes:
    return bytes([n]) * 32


TAG = bytes([200]) * 32
OTHER_TAG = bytes([201]) * 32


async def test_what_is_put_is_got_back(store):
    await store.put(ident(1), b"one", keep=60, tag=None)
    assert await store.get(ident(1)) == b"one"
    assert await store.get(ident(2)) is None
    assert store.count() == 1


async def test_a_put_replaces(store):
    await store.put(ident(1), b"one", keep=60, tag=None)
    await store.put(ident(1), b"uno", keep=60, tag=None)
    assert await store.get(ident(1)) == b"uno"


async def test_deleting_a_tag_drops_every_variant_and_nothing_else(store):
    await store.put(ident(1), b"a", keep=60, tag=TAG)
    await store.put(ident(2), b"b", keep=60, tag=TAG)
    await store.put(ident(3), b"c", keep=60, tag=OTHER_TAG)
    await store.delete(TAG)
    assert await store.get(ident(1)) is None and await store.get(ident(2)) is None
    assert await store.get(ident(3)) == b"c"


async def test_deleting_an_id_drops_exactly_it(store):
    await store.put(ident(1), b"a", keep=60, tag=None)
    await store.put(ident(2), b"b", keep=60, tag=None)
    await store.delete(ident(1))
    assert await store.get(ident(1)) is None and await store.get(ident(2)) == b"b"


async def test_an_entry_past_its_keep_time_is_gone(store):
    await store.put(ident(1), b"short", keep=0.05, tag=None)
    await store.put(ident(2), b"long", keep=60, tag=None)
    await trio.sleep(0.1)  # expiry is a wall-clock matter in every store
    assert await store.get(ident(1)) is None
    assert await store.get(ident(2)) == b"long"


async def test_the_size_bound_is_kept(store):
    chunk = b"x" * (512 * 1024)
    for n in range(20):  # 10 MiB into a 4 MiB store
        await store.put(ident(n), chunk, keep=60, tag=None)
    kept = [n for n in range(20) if await store.get(ident(n)) is not None]
    assert 0 < len(kept) < 20
    assert 19 in kept  # the newest survives eviction
