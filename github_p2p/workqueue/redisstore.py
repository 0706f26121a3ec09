"""A :class:`~github_p2p.workqueue.store.QueueStore` in Redis, shared by the hubs on it.

Each queue is a handful of keys under the fleet's prefix (one hash tag, so every script runs on
one Redis Cluster slot): its metadata (a hash), its items (a hash of index to a JSON record),
the indexes of its ``ready`` and ``leased`` items (sorted sets, so the lowest ready index is one
``ZRANGE`` away) and its counts by state. A global sorted set of queues by last activity serves
counting and pruning; a hash counts each owner's queues.

A transition is optimistic: read the record, apply the pure change (:mod:`github_p2p.core.queue`)
here, then one Lua script writes the new record only if the stored one is still the one that was
read, moving the index between the state sets and the counters in the same step; if another hub
wrote in between, read again. Nothing the pure core decides (tokens, expiries, attempts, which
item comes next) is left to Redis, so every store behaves alike; that is also why this is not a
Streams consumer group, whose delivery counts, idle-time claims and first-delivery order would be
a second state machine next to the board's.

Keep these keys out of eviction: they carry no expiry, so ``maxmemory-policy volatile-lru``
never evicts them, and AOF keeps them across a restart (docs/bootstrap-node.md).
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import coredis

from github_p2p.core.queue import (
    ITEM_STATES,
    ItemRecord,
    QueueCounts,
    QueueKey,
    QueueMeta,
    QueuePolicy,
)
from github_p2p.errors import CacheStoreError
from github_p2p.workqueue.store import Change

__all__ = ["RedisQueueStore"]

T = TypeVar("T")
#: Optimistic writes retried this often before giving up (each retry means another hub wrote).
_RETRIES = 100
#: Items written per Redis call when a queue is created.
_CHUNK = 500
#: A creator that dies between staging its items and creating the queue leaves them this long.
_STAGED_MS = 10 * 60 * 1000
_BROKEN = (coredis.exceptions.RedisError, OSError, TimeoutError, anyio.ClosedResourceError,
           anyio.BrokenResourceError)

#: CREATE: KEYS meta, items, ready, n, queues, owners, attempts, staged items; ARGV member,
#: owner, then field/value pairs of the metadata up to '--', of the counts up to '--', then the
#: ready indexes. The items were staged under a key of their own: they take their place only
#: if the queue does not exist yet, so a creator that lost the race never overwrites a queue
#: whose items are already being claimed. Returns 1 when created, 0 when the queue existed.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[8])
  return 0
end
local at = 3
local meta, counts = {}, {}
while ARGV[at] ~= '--' do meta[#meta + 1] = ARGV[at]; at = at + 1 end
at = at + 1
while ARGV[at] ~= '--' do counts[#counts + 1] = ARGV[at]; at = at + 1 end
for i = at + 1, #ARGV, 500 do
  local scored = {}
  for j = i, math.min(i + 499, #ARGV) do
    scored[#scored + 1] = ARGV[j]
    scored[#scored + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[3], unpack(scored))
end
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('RENAME', KEYS[8], KEYS[2]) end
redis.call('PERSIST', KEYS[2])
redis.call('HSET', KEYS[4], unpack(counts))
redis.call('HSET', KEYS[1], unpack(meta))
redis.call('ZADD', KEYS[5], redis.call('HGET', KEYS[1], 'updated_at'), ARGV[1])
redis.call('HINCRBY', KEYS[6], ARGV[2], 1)
redis.call('SADD', KEYS[7], redis.call('HGET', KEYS[1], 'attempt'))
return 1
"""

#: SWAP: KEYS items, ready, leased, n, meta, queues; ARGV index, old record, new record, old
#: state, new state, carried change (-1, 0, 1), updated_at, member. Returns 1 when written,
#: 0 when the stored record is no longer the old one.
_SWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= ARGV[5] then
  if ARGV[4] == 'ready' then redis.call('ZREM', KEYS[2], ARGV[1]) end
  if ARGV[4] == 'leased' then redis.call('ZREM', KEYS[3], ARGV[1]) end
  if ARGV[5] == 'ready' then redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1]) end
  if ARGV[5] == 'leased' then redis.call('ZADD', KEYS[3], ARGV[1], ARGV[1]) end
  redis.call('HINCRBY', KEYS[4], ARGV[4], -1)
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
end
if ARGV[6] ~= '0' then redis.call('HINCRBY', KEYS[4], 'carried', ARGV[6]) end
if tonumber(ARGV[7]) > tonumber(redis.call('HGET', KEYS[5], 'updated_at') or '0') then
  redis.call('HSET', KEYS[5], 'updated_at', ARGV[7])
  redis.call('ZADD', KEYS[6], ARGV[7], ARGV[8])
end
return 1
"""

#: DROP: KEYS meta, items, ready, leased, n, queues, owners, attempts; ARGV member. Forgets
#: one queue. Returns 1 when it existed.
_DROP = """
local owner = redis.call('HGET', KEYS[1], 'owner')
local attempt = redis.call('HGET', KEYS[1], 'attempt')
redis.call('ZREM', KEYS[6], ARGV[1])
if not owner then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if redis.call('HINCRBY', KEYS[7], owner, -1) <= 0 then redis.call('HDEL', KEYS[7], owner) end
redis.call('SREM', KEYS[8], attempt)
return 1
"""


def _encode(item: ItemRecord) -> str:
    return json.dumps([item.index, item.digest.hex(),
                       base64.b64encode(item.envelope).decode(), item.state, item.attempts,
                       item.token, item.holder, repr(float(item.expires_at)), bool(item.reported),
                       item.completions, bool(item.carried), repr(float(item.updated_at))],
                      separators=(",", ":"))


def _decode(raw: bytes | str) -> ItemRecord:
    try:
        (index, digest, envelope, state, attempts, token, holder, expires_at, reported,
         completions, carried, updated_at) = json.loads(raw)
        if state not in ITEM_STATES:
            raise ValueError(f"unknown state {state!r}")
        return ItemRecord(index=int(index), digest=bytes.fromhex(digest),
                          envelope=base64.b64decode(envelope), state=state,
                          attempts=int(attempts), token=token, holder=str(holder),
                          expires_at=float(expires_at), reported=bool(reported),
                          completions=int(completions), carried=bool(carried),
                          updated_at=float(updated_at))
    except (ValueError, TypeError) as exc:
        raise CacheStoreError(f"queue store holds an unreadable item: {exc}") from exc


async def _stage(client: Any, *, key: str, records: dict[str, str]) -> None:
    await client.hset(key, records)
    await client.pexpire(key, _STAGED_MS)


def _pairs(fields: dict[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisQueueStore:
    """Queues in Redis; ``client`` returns the running coredis client (``None`` while there is
    none), ``prefix`` is the fleet's key prefix (``gp2p:{NAMESPACE}:``)."""

    def __init__(self, client: Callable[[], Any], prefix: str) -> None:
        self._client = client
        self.prefix = prefix
        self._scripts: dict[str, Any] = {}

    # -- keys --------------------------------------------------------------------------------

    @staticmethod
    def _member(key: QueueKey) -> str:
        return f"{key.queue_id.hex()}:{key.attempt}"

    def _keys(self, key: QueueKey) -> dict[str, str]:
        base = f"{self.prefix}q:{self._member(key)}:"
        return {part: base + part for part in ("meta", "items", "ready", "leased", "n")}

    @property
    def _queues(self) -> str:
        return f"{self.prefix}queues"

    @property
    def _owners(self) -> str:
        return f"{self.prefix}queue-owners"

    def _attempts(self, queue_id: bytes) -> str:
        return f"{self.prefix}q:{queue_id.hex()}:attempts"

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(self, command: Callable[[Any], Awaitable[T]]) -> T:
        client = self._client()
        if client is None:
            raise CacheStoreError("the queue store's Redis client is not running")
        try:
            return await command(client)
        except _BROKEN as exc:
            raise CacheStoreError(f"queue store (Redis): {type(exc).__name__}: {exc}") from exc

    async def _script(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        async def run(client: Any) -> Any:
            script = self._scripts.get(name)
            if script is None or script.registered_client is not client:
                script = self._scripts[name] = client.register_script(source)
            return await script(keys=keys, args=args)

        return await self._call(run)

    # -- QueueStore --------------------------------------------------------------------------

    async def create(self, meta: QueueMeta, items: Sequence[ItemRecord]) -> QueueMeta:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        key, keys = meta.key, self._keys(meta.key)
        if await self.meta(key) is None:
            staged = f"{keys['items']}:staged:{secrets.token_hex(8)}"
            for start in range(0, len(items), _CHUNK):
                records = {str(item.index): _encode(item) for item in items[start:start + _CHUNK]}
                await self._call(functools.partial(_stage, key=staged, records=records))
            counts: dict[str, int] = {state: sum(item.state == state for item in items)
                                      for state in ITEM_STATES}
            counts["carried"] = sum(item.carried for item in items)
            ready = [str(item.index) for item in items if item.state == "ready"]
            created = await self._script(
                "create", _CREATE,
                [keys["meta"], keys["items"], keys["ready"], keys["n"], self._queues,
                 self._owners, self._attempts(key.queue_id), staged],
                [self._member(key), meta.owner, *_pairs(self._meta_fields(meta)), "--",
                 *_pairs({k: str(v) for k, v in counts.items()}), "--", *ready])
            if created:
                return meta
        existing = await self.meta(key)
        if existing is None:  # created and pruned in between: a very old queue
            raise CacheStoreError("queue store: the queue vanished while it was created")
        return existing

    @staticmethod
    def _meta_fields(meta: QueueMeta) -> dict[str, str]:
        policy = meta.policy
        return {"queue_id": meta.key.queue_id.hex(), "attempt": str(meta.key.attempt),
                "owner": meta.owner, "total": str(meta.total),
                "lease_ttl": repr(float(policy.lease_ttl)),
                "max_attempts": str(policy.max_attempts),
                "retry_failed": "1" if policy.retry_failed else "0",
                "created_at": repr(float(meta.created_at)),
                "updated_at": repr(float(meta.updated_at))}

    async def meta(self, key: QueueKey) -> QueueMeta | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        raw = await self._call(lambda c: c.hgetall(self._keys(key)["meta"]))
        if not raw:
            return None
        f = {_text(k): _text(v) for k, v in raw.items()}
        try:
            policy = QueuePolicy(float(f["lease_ttl"]), int(f["max_attempts"]),
                                 f["retry_failed"] == "1")
            return QueueMeta(key, policy, total=int(f["total"]), owner=f["owner"],
                             created_at=float(f["created_at"]),
                             updated_at=float(f["updated_at"]))
        except (KeyError, ValueError) as exc:
            raise CacheStoreError(f"queue store holds unreadable metadata: {exc}") from exc

    async def _all(self, key: QueueKey) -> list[ItemRecord]:
        raw = await self._call(lambda c: c.hgetall(self._keys(key)["items"]))
        return sorted((_decode(value) for value in raw.values()), key=lambda item: item.index)

    async def digests(self, key: QueueKey) -> list[bytes]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        return [item.digest for item in await self._all(key)]

    async def item(self, key: QueueKey, index: int) -> ItemRecord | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        raw = await self._raw(key, index)
        return _decode(raw) if raw is not None else None

    async def _raw(self, key: QueueKey, index: int) -> bytes | None:
        raw = await self._call(lambda c: c.hget(self._keys(key)["items"], str(index)))
        return bytes(raw) if raw is not None else None

    async def done_digests(self, queue_id: bytes, before_attempt: int) -> frozenset[bytes]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        attempts = await self._call(lambda c: c.smembers(self._attempts(queue_id)))
        done: set[bytes] = set()
        for attempt in sorted(int(_text(a)) for a in attempts):
            if attempt < before_attempt:
                items = await self._all(QueueKey(queue_id, attempt))
                done.update(item.digest for item in items if item.state == "done")
        return frozenset(done)

    async def _swap(self, key: QueueKey, raw: bytes, before: ItemRecord, after: ItemRecord
                    ) -> bool:
        """Write ``after`` if item ``before.index`` is still stored as ``raw``."""
        if after.index != before.index or after.digest != before.digest:
            raise ValueError("a change may not move an item or alter its content")
        keys = self._keys(key)
        written = await self._script(
            "swap", _SWAP,
            [keys["items"], keys["ready"], keys["leased"], keys["n"], keys["meta"],
             self._queues],
            [str(before.index), raw, _encode(after), before.state, after.state,
             str(int(after.carried) - int(before.carried)), repr(float(after.updated_at)),
             self._member(key)])
        return bool(written)

    async def update(self, key: QueueKey, index: int, change: Change) -> ItemRecord | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        for _ in range(_RETRIES):
            raw = await self._raw(key, index)
            if raw is None:
                return None
            before = _decode(raw)
            after = change(before)
            if after == before or await self._swap(key, raw, before, after):
                return after
        raise CacheStoreError(f"queue store: item {index} kept changing underneath us")

    async def claim_first(self, key: QueueKey, change: Change) -> ItemRecord | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        for _ in range(_RETRIES):
            first = await self._call(lambda c: c.zrange(self._keys(key)["ready"], 0, 0))
            if not first:
                return None
            raw = await self._raw(key, int(_text(first[0])))
            before = _decode(raw) if raw is not None else None
            if raw is None or before is None or before.state != "ready":
                continue  # moved on since: look again
            after = change(before)
            if after == before or await self._swap(key, raw, before, after):
                return after
        raise CacheStoreError("queue store: the ready items kept changing underneath us")

    async def leased(self, key: QueueKey) -> list[ItemRecord]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        keys = self._keys(key)
        indexes = await self._call(lambda c: c.zrange(keys["leased"], 0, -1))
        if not indexes:
            return []
        raw = await self._call(lambda c: c.hmget(keys["items"], [_text(i) for i in indexes]))
        return [item for item in (_decode(r) for r in raw if r is not None)
                if item.state == "leased"]

    async def counts(self, key: QueueKey) -> QueueCounts:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        raw = await self._call(lambda c: c.hgetall(self._keys(key)["n"]))
        n = {_text(k): int(_text(v)) for k, v in raw.items()}
        return QueueCounts(n.get("ready", 0), n.get("leased", 0), n.get("done", 0),
                           n.get("failed", 0), n.get("carried", 0))

    async def items(self, key: QueueKey) -> list[ItemRecord]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        return await self._all(key)

    async def owned_by(self, owner: str) -> int:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        raw = await self._call(lambda c: c.hget(self._owners, owner))
        return int(_text(raw)) if raw is not None else 0

    async def queue_count(self) -> int:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        return int(await self._call(lambda c: c.zcard(self._queues)))

    async def prune(self, idle_before: float) -> int:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        old = await self._call(lambda c: c.zrangebyscore(self._queues, "-inf",
                                                         f"({idle_before!r}"))
        dropped = 0
        for member in (_text(m) for m in old):
            queue_hex, attempt = member.rsplit(":", 1)
            key = QueueKey(bytes.fromhex(queue_hex), int(attempt))
            keys = self._keys(key)
            dropped += int(await self._script(
                "drop", _DROP,
                [keys["meta"], keys["items"], keys["ready"], keys["leased"], keys["n"],
                 self._queues, self._owners, self._attempts(key.queue_id)], [member]))
        return dropped

    def close(self) -> None:
        """Nothing to release: the client belongs to the hub's Redis state."""
