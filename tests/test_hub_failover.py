"""A hub whose Redis goes away keeps answering from its own memory, says so, and goes back.

Redis is taken away for real: never started, killed (SIGKILL), or frozen (SIGSTOP, so it comes
back with its data). Every wait is on a state the test can observe.
"""

from __future__ import annotations

import signal

import trio
from redis_support import eventually, failover_state, redis_states

from github_p2p.core.lease import LeaseOutcome
from github_p2p.testing.redisserver import RedisServer

ID = bytes(range(32))
TAG = bytes([9]) * 32


async def test_unreachable_at_start_then_shared_once_redis_is_there(tmp_path, redis_server):
    later = RedisServer(workdir=tmp_path / "later")  # its port is known, nothing listens yet
    try:
        async with failover_state(later.url) as hub:
            assert hub.status == "degraded"
            figures = hub.figures()
            assert figures["state_status"] == "degraded" and figures["redis_outages"] == 1
            granted = await hub.lease(ID, "a", wait=0)
            assert granted.outcome is LeaseOutcome.GRANTED
            await hub.put(ID, b"local", fresh_ttl=60, keep_ttl=600, tag=None,
                          lease_token=granted.lease.token)
            assert (await hub.lease(ID, "b", wait=0)).outcome is LeaseOutcome.HIT
            later.start()
            await eventually(lambda: hub.status == "active", "the hub to use Redis")
            assert hub.figures()["redis_recoveries"] == 1
            await hub.put(TAG, b"shared", fresh_ttl=60, keep_ttl=600, tag=None,
                          lease_token=None)
            async with redis_states(later.url) as (other_hub,):
                stored = await other_hub.get(TAG)
                assert stored is not None and stored.envelope == b"shared"
    finally:
        later.close()


async def test_redis_killed_under_a_waiter_answers_from_the_fallback(redis_server):
    async with failover_state(redis_server.url) as hub:
        assert hub.status == "active"
        await hub.lease(ID, "holder", wait=0)
        got = {}

        async def waiter() -> None:
            got["answer"] = await hub.lease(ID, "waiter", wait=30)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await eventually(lambda: hub.figures()["waiters"] == 1, "a waiter")
            redis_server.kill()
        # The fallback knows no lease for it: the waiter may fetch it itself.
        assert got["answer"].outcome is LeaseOutcome.GRANTED
        assert hub.status == "degraded" and hub.figures()["redis_outages"] == 1
        redis_server.start()
        await eventually(lambda: hub.status == "active", "recovery")


async def test_invalidations_during_an_outage_are_replayed_before_redis_serves(redis_server):
    async with failover_state(redis_server.url, op_timeout=0.5) as hub, \
            redis_states(redis_server.url) as (other,):
        await hub.put(ID, b"before-the-write", fresh_ttl=600, keep_ttl=600, tag=TAG,
                      lease_token=None)
        assert (await other.get(ID)) is not None
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            await hub.delete(TAG)  # a write happened; Redis cannot hear of it now
            assert hub.status == "degraded" and hub.figures()["deletes_pending"] == 1
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        await eventually(lambda: hub.status == "active", "recovery")
        assert hub.figures()["deletes_replayed"] == 1
        assert await other.get(ID) is None and await hub.get(ID) is None
