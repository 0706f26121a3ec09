"""The work queue's Redis store beyond the shared contract: several hubs writing at once, the
create race, keys that eviction leaves alone, a Redis Cluster, and real hubs whose queue
survives the loss of the hub that kept it (the contract itself runs in
``test_queue_store_contract.py``).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import coredis
import trio
from redis_support import KEY, redis_queue_store
from test_faults_support import START, wait_until

from github_p2p.core import queue as core
from github_p2p.core.keys import derive_network_key
from github_p2p.core.queue import ItemRecord, QueueKey, QueueMeta, QueuePolicy
from github_p2p.nodes.hub.redis_settings import RedisKeys, fleet_namespace
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.workqueue.redisstore import RedisQueueStore

POLICY = QueuePolicy(lease_ttl=60, max_attempts=3)
QKEY = QueueKey(bytes([4]) * 32, 1)


def sealed(n: int) -> list[tuple[bytes, bytes]]:
    return [(i.to_bytes(32, "big"), f"env{i}".encode()) for i in range(n)]


async def create(store: RedisQueueStore, n: int, owner: str = "peer-a") -> QueueMeta:
    meta = QueueMeta(QKEY, POLICY, n, owner, 10.0, 10.0)
    return await store.create(meta, core.new_items(sealed(n), done_before=(), now=10.0))


async def test_hubs_claiming_at_once_hand_out_each_item_once(redis_server):
    tokens = (f"t{i}" for i in itertools.count())
    async with redis_queue_store(redis_server.url) as one, \
            redis_queue_store(redis_server.url) as two:
        await create(one, 60)
        taken: list[int] = []

        async def worker(store: RedisQueueStore, name: str) -> None:
            while (item := await store.claim_first(QKEY, functools.partial(
                    core.claim, holder=name, token=next(tokens), now=20.0,
                    policy=POLICY))) is not None:
                taken.append(item.index)

        async with trio.open_nursery() as nursery:
            for n in range(8):
                nursery.start_soon(worker, one if n % 2 else two, f"w{n}")
        assert sorted(taken) == list(range(60))
        counts = await two.counts(QKEY)
        assert (counts.ready, counts.leased) == (0, 60)
        assert [item.index for item in await one.leased(QKEY)] == list(range(60))


async def test_a_creator_that_lost_the_race_leaves_the_queue_alone(redis_server):
    class Late(RedisQueueStore):
        """Saw no queue a moment ago (the other hub created it since)."""

        first = True

        async def meta(self, key: QueueKey) -> QueueMeta | None:
            if self.first:
                self.first = False
                return None
            return await super().meta(key)

    async with redis_queue_store(redis_server.url) as one, \
            redis_queue_store(redis_server.url) as plain:
        created = await create(one, 3)
        leased = await one.claim_first(QKEY, functools.partial(
            core.claim, holder="r", token="t", now=20.0, policy=POLICY))
        late = Late(plain._client, plain.prefix)
        assert await create(late, 3, owner="peer-b") == await one.meta(QKEY)
        assert created.owner == "peer-a"
        assert await one.item(QKEY, 0) == leased  # not reset to ready
        assert await late.owned_by("peer-b") == 0 and await late.queue_count() == 1
        async with coredis.Redis.from_url(redis_server.url) as client:
            _, keys = await client.scan(0, match="*staged*", count=1000)
        assert keys == ()  # the loser's staged items are gone


async def test_queue_keys_share_the_fleets_hash_tag_and_never_expire(redis_server):
    async with redis_queue_store(redis_server.url) as store:
        await create(store, 5)
        await store.update(QKEY, 1, functools.partial(core.claim, holder="r", token="t",
                                                      now=20.0, policy=POLICY))
        prefix = RedisKeys(fleet_namespace(KEY)).prefix.encode()
        async with coredis.Redis.from_url(redis_server.url) as client:
            _, keys = await client.scan(0, count=1000)
            assert keys and all(key.startswith(prefix) for key in keys)
            # No expiry: volatile-lru never evicts a queue.
            assert {await client.pttl(key) for key in keys} == {-1}


async def test_the_store_on_a_redis_cluster(redis_cluster):
    redis_cluster.flush()
    from redis_support import settings

    from github_p2p.nodes.hub.redis_client import redis_client

    async with redis_client(settings(redis_cluster.url)) as client:
        store = RedisQueueStore(lambda: client, RedisKeys(fleet_namespace(KEY)).prefix)
        await create(store, 4)
        item = await store.claim_first(QKEY, functools.partial(
            core.claim, holder="r", token="t", now=20.0, policy=POLICY))
        assert item is not None and item.index == 0
        done = await store.update(QKEY, 0, lambda rec: core.complete(
            rec, "t", True, 21.0, POLICY)[0])
        assert isinstance(done, ItemRecord) and done.state == "done"
        assert (await store.counts(QKEY)).done == 1
        assert await store.prune(idle_before=100.0) == 1 and await store.queue_count() == 0


# --- real hubs -----------------------------------------------------------------------------

CLI = [sys.executable, "-m", "github_p2p.cli", "queue"]
ITEMS = [f"item-{i:02d}" for i in range(24)]


def test_a_queue_outlives_the_hub_that_kept_it(tmp_path, redis_server):
    log = tmp_path / "runs.log"
    script = 'echo "$1" >> "$LOG"; sleep 0.2'
    with LocalFleet("http://127.0.0.1:9", workdir=tmp_path / "fleet") as fleet:
        hubs = [fleet.start_hub(timeout=START, args=["--redis-url", redis_server.url])
                for _ in range(2)]
        peer = fleet.start_peer(timeout=START)
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith(("GITHUB_", "RUNNER_"))},
               "GITHUB_P2P_ENDPOINT": peer.endpoint, "GITHUB_RUN_ID": "77",
               "GITHUB_RUN_ATTEMPT": "1", "LOG": str(log)}
        done = subprocess.run([*CLI, "submit", "suite", *ITEMS], env=env, capture_output=True,
                              text=True, timeout=START, check=False)
        assert done.returncode == 0, done.stderr
        run = subprocess.Popen([*CLI, "run", "suite", "--", "sh", "-c", script, "sh"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: log.exists() and len(log.read_text().split()) >= 6, START,
                   "six items done")

        def claims(hub) -> int:
            import requests

            return int(requests.get(hub.endpoint + "/_p2p/stats", timeout=30).json()[
                "queue_claims"])

        keeper = max(hubs, key=claims)
        keeper.kill()
        # Its machine is gone: a new one with the same identity and address, no local state.
        shutil.rmtree(tmp_path / "fleet" / keeper.name / "cache", ignore_errors=True)
        fleet.start_hub(name=keeper.name, timeout=START,
                        args=["--redis-url", redis_server.url])
        output, _ = run.communicate(timeout=6 * START)
        assert run.returncode == 0, output
        ran = Counter(log.read_text().split())
        assert set(ran) == set(ITEMS) and max(ran.values()) <= 2, ran
        status = subprocess.run([*CLI, "status", "suite"], env=env, capture_output=True,
                                text=True, timeout=START, check=True)
        counts = json.loads(status.stdout)
        assert (counts["done"], counts["ready"], counts["leased"]) == (len(ITEMS), 0, 0)
        assert not list((tmp_path / "fleet").glob("hub*/cache/queues.sqlite3"))
    # Redis is the judge: every item completed exactly once.
    network_key = derive_network_key(fleet.secret)
    assert trio.run(completions, redis_server.url, network_key) == [1] * len(ITEMS)


async def completions(url: str, network_key: bytes) -> list[int]:
    async with redis_queue_store(url, network_key) as store, \
            coredis.Redis.from_url(url) as client:
        _, keys = await client.scan(0, match="*:q:*:1:meta", count=1000)
        (meta_key,) = keys
        queue_hex = meta_key.decode().split(":q:")[1].split(":")[0]
        items = await store.items(QueueKey(bytes.fromhex(queue_hex), 1))
    return [item.completions for item in items]
