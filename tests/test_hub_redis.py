"""The hubs' Redis state on a real redis-server: what the shared contract does not say.

Keys live under the fleet's namespace and hash tag; Redis learns ids and ciphertext only; a dead
hub's leases are handed on by the others; a least-privilege ACL user is enough; TLS verifies
the server; a refused password is a configuration error; and the coredis defect worked around
in the subscriber shows itself without the workaround.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import coredis
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis_support import KEY, eventually, redis_states, settings

from github_p2p.core import queue as core_queue
from github_p2p.core.lease import LeaseOutcome
from github_p2p.core.queue import QueueKey, QueueMeta, QueuePolicy
from github_p2p.errors import ConfigError
from github_p2p.nodes.hub.redis_client import ALL_COREDIS_WORKAROUNDS, CoredisWorkaround
from github_p2p.nodes.hub.redis_preflight import preflight
from github_p2p.nodes.hub.redis_settings import RedisKeys, RedisSettings, fleet_namespace
from github_p2p.testing.redisserver import RedisServer, redis_server_path
from github_p2p.workqueue.redisstore import RedisQueueStore

ID = bytes(range(32))
TAG = bytes([9]) * 32
#: The least a hub needs (docs/bootstrap-node.md gives the same line).
HUB_ACL = ("gp2p-hub on >hub-password resetkeys ~gp2p:* resetchannels &gp2p:* -@all "
           "+@connection +select +evalsha +script|load +publish +subscribe +unsubscribe "
           "+hgetall +hset +del +scan +info +hmget +get +set +sadd +srem +smembers +pexpire "
           "+pttl +hdel +hget +exists +hincrby +zadd +zrem +zrange +zrangebyscore +zcard "
           "+rename +persist")

needs_redis = pytest.mark.skipif(redis_server_path() is None,
                                 reason="redis-server is not installed (scripts/ensure-redis)")


async def raw(url: str) -> coredis.Redis[bytes]:
    return coredis.Redis.from_url(url)


async def everything(url: str) -> dict[bytes, bytes]:
    """Every key with its serialised value (DUMP), to see what Redis holds."""
    out: dict[bytes, bytes] = {}
    async with coredis.Redis.from_url(url) as client:
        cursor = None
        while cursor != 0:
            cursor, keys = await client.scan(cursor or 0, count=1000)
            for key in keys:
                out[key] = await client.dump(key) or b""
    return out


async def test_keys_live_under_the_fleets_namespace_and_hash_tag(redis_server):
    other_key = bytes(32)
    async with redis_states(redis_server.url) as (mine,), \
            redis_states(redis_server.url, key=other_key) as (theirs,):
        granted = await mine.lease(ID, "peer#1", wait=0)
        await mine.put(ID, b"ours", fresh_ttl=60, keep_ttl=600, tag=TAG,
                       lease_token=granted.lease.token)
        await mine.lease(bytes([1]) * 32, "peer#1", wait=0)
        await mine.note_limit("search", time.time() + 60)
        # Another fleet on the same Redis sees nothing of ours.
        assert await theirs.get(ID) is None
        assert (await theirs.lease(ID, "x", wait=0)).outcome is LeaseOutcome.GRANTED
        keys = await everything(redis_server.url)
    prefixes = {RedisKeys(fleet_namespace(k)).prefix.encode() for k in (KEY, other_key)}
    assert keys and all(key.startswith(tuple(prefixes)) for key in keys), sorted(keys)
    ours = RedisKeys(fleet_namespace(KEY))
    assert ours.entry(ID).encode() in keys and ours.tag(TAG).encode() in keys
    assert ours.lease(bytes([1]) * 32).encode() in keys and ours.limits.encode() in keys
    assert ours.prefix.startswith("gp2p:{") and ours.prefix.endswith("}:")


async def test_redis_learns_ids_and_ciphertext_only(redis_server):
    peer = "12D3KooWRunnerPeerIdThatMustNotLeak#7"
    async with redis_states(redis_server.url) as (state,):
        granted = await state.lease(ID, peer, wait=0)
        await state.lease(bytes([2]) * 32, peer, wait=0)
        await state.put(ID, b"\x00sealed-bytes", fresh_ttl=60, keep_ttl=600, tag=TAG,
                        lease_token=granted.lease.token)
        await state.beat()
        dumped = b"".join(k + v for k, v in (await everything(redis_server.url)).items())
    assert b"sealed-bytes" in dumped  # the ciphertext, as given
    assert b"RunnerPeerId" not in dumped and KEY not in dumped and KEY.hex().encode() not in dumped


async def test_a_dead_hubs_leases_are_handed_on_by_the_others(redis_server):
    async with redis_states(redis_server.url) as (survivor,):
        with trio.CancelScope() as dead_scope:
            async with redis_states(redis_server.url) as (dying,):
                held = await dying.lease(ID, "runner#1", wait=0)
                assert held.outcome is LeaseOutcome.GRANTED
                dead = dying.instance
                dead_scope.cancel()
        # A killed hub does no clean-up: put its heartbeat back as it was when it died.
        async with coredis.Redis.from_url(redis_server.url) as client:
            await client.hset(survivor.keys.hubs, {dead: int(time.time() * 1000) + 500})
        with trio.fail_after(20):
            answer = await survivor.lease(ID, "runner#2", wait=15)
        assert answer.outcome is LeaseOutcome.GRANTED
        assert answer.lease.token != held.lease.token
        assert survivor.leases_reaped == 1
        await eventually(lambda: survivor.figures()["shared_hubs"] == 1, "one live hub")


async def test_a_least_privilege_acl_user_is_enough(tmp_path):
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (scripts/ensure-redis)")
    args = ["--user", "default", "off", "--user", *HUB_ACL.split()]
    with RedisServer(args=args, workdir=tmp_path / "redis") as server:
        url = f"redis://gp2p-hub:hub-password@127.0.0.1:{server.port}/0"
        assert (await preflight(settings(url))).unreachable is None
        async with redis_states(url, 2, lease_ttl=5) as (one, two):
            granted = await one.lease(ID, "a", wait=0)
            await two.put(ID, b"x", fresh_ttl=60, keep_ttl=600, tag=TAG,
                          lease_token=granted.lease.token)
            assert (await two.lease(ID, "b", wait=0)).outcome is LeaseOutcome.HIT
            await one.lease(bytes([5]) * 32, "a", wait=0)
            assert await one.release_holder("a") == 1
            await one.note_limit("search", time.time() + 60)
            assert await two.delete(TAG) == 1
            await one.beat()
            await one.refresh_figures()
            assert one.errors == two.errors == 0
            assert one.figures()["total_entries"] == 1
            # The work queues too.
            queues = RedisQueueStore(lambda: one.client, one.keys.prefix)
            key = QueueKey(bytes([3]) * 32, 1)
            policy = QueuePolicy()
            await queues.create(QueueMeta(key, policy, 2, "peer", 1.0, 1.0),
                                core_queue.new_items([(bytes(32), b"a"), (bytes([1]) * 32, b"b")],
                                                     done_before=(), now=1.0))
            claimed = await queues.claim_first(key, functools.partial(
                core_queue.claim, holder="r", token="t", now=2.0, policy=policy))
            assert claimed is not None and (await queues.counts(key)).leased == 1
            assert await queues.prune(idle_before=10.0) == 1
        with pytest.raises(ConfigError, match="refused the credentials"):
            await preflight(settings(f"redis://gp2p-hub:wrong@127.0.0.1:{server.port}/0"))


def _tls_files(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signs for ``name`` (a DNS name or an IP)."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
             signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            try:
                alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(subject))
            except ValueError:
                alt = x509.DNSName(subject)
            builder = builder.add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "github-p2p test CA")])
    ca_cert = cert("github-p2p test CA", ca_key, ca_name, ca_key, True)
    server_cert = cert(name, key, ca_name, ca_key, False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@needs_redis
@pytest.mark.parametrize("cert_name, ca, reachable", [
    pytest.param("127.0.0.1", True, True, id="verified"),
    pytest.param("127.0.0.1", False, False, id="unknown-ca-refused"),
    pytest.param("other.example", True, False, id="wrong-name-refused"),
])
async def test_tls_verifies_the_server(tmp_path, cert_name, ca, reachable):
    ca_file, cert_file, key_file = _tls_files(tmp_path, cert_name)
    from github_p2p.testing.localfleet import free_port

    tls_port = free_port()
    args = ["--tls-port", str(tls_port), "--tls-cert-file", str(cert_file),
            "--tls-key-file", str(key_file), "--tls-ca-cert-file", str(ca_file),
            "--tls-auth-clients", "no", "--requirepass", "tls-password"]
    with RedisServer(args=args, workdir=tmp_path / "redis"):
        url = f"rediss://:tls-password@127.0.0.1:{tls_port}/0"
        if ca:
            url += f"?ssl_ca_certs={ca_file}"
        found = await preflight(settings(url, connect_timeout=2))
        assert (found.unreachable is None) is reachable, found
        if reachable:
            async with redis_states(url) as (state,):
                await state.put(ID, b"over-tls", fresh_ttl=60, keep_ttl=60, tag=None,
                                lease_token=None)
                assert (await state.get(ID)).envelope == b"over-tls"


def test_urls_are_validated_and_passwords_kept_out_of_sight():
    parsed = RedisSettings.from_url("rediss://hub:s%40cret@redis.example:6380/2"
                                    "?ssl_ca_certs=/etc/ca.pem", {})
    assert (parsed.host, parsed.port, parsed.db, parsed.username, parsed.password, parsed.tls) == (
        "redis.example", 6380, 2, "hub", "s@cret", True)
    assert "s@cret" not in parsed.display and "s@cret" not in repr(parsed)
    from_env = RedisSettings.from_url("redis://hub@h:1/0", {"GITHUB_P2P_REDIS_PASSWORD": "pw"})
    assert from_env.password == "pw"
    cluster = RedisSettings.from_url("redis://node1:7000?cluster=yes", {})
    assert cluster.cluster and cluster.display.endswith("?cluster=yes")
    assert "db" not in cluster.client_options()
    for bad, why in (("http://h", "redis://"), ("redis://h/x", "database"),
                     ("redis://h/1?cluster=yes", "database 0"), ("redis://h?cluster=2", "yes"),
                     ("redis://h:99999", "Redis URL"), ("redis://h?ssl_ca_certs=x", "rediss"),
                     ("rediss://h?timeout=3", "unknown"), ("redis://", "host"),
                     ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs")):
        with pytest.raises(ConfigError, match=why):
            RedisSettings.from_url(bad, {})


@needs_redis
def test_the_command_line_refuses_bad_urls_and_passwords_with_exit_2(redis_server, tmp_path):
    protected = RedisServer(args=["--requirepass", "right"], workdir=tmp_path / "r2").start()
    try:
        for url, message in (("ftp://127.0.0.1", "redis://"),
                             (f"redis://:wrong@127.0.0.1:{protected.port}/0",
                              "refused the credentials")):
            done = subprocess.run(
                [sys.executable, "-m", "github_p2p.cli", "bootstrap", "--redis-url", url,
                 "--cache-dir", str(tmp_path / "hub"), "--port", "0", "--http-port", "0"],
                env={"GITHUB_P2P_SECRET": "cli-secret", "PATH": "/usr/bin:/bin"},
                capture_output=True, text=True, timeout=120)
            assert done.returncode == 2, done.stderr
            assert message in done.stderr and "Traceback" not in done.stderr
            assert "wrong" not in done.stderr
    finally:
        protected.close()


async def test_preflight_reports_an_unreachable_server_and_risky_eviction(redis_server):
    from github_p2p.testing.localfleet import free_port

    found = await preflight(settings(f"redis://127.0.0.1:{free_port()}/0",
                                     connect_timeout=1, op_timeout=1))
    assert found.unreachable is not None
    async with coredis.Redis.from_url(redis_server.url) as client:
        await client.config_set({"maxmemory-policy": "allkeys-lru"})
    found = await preflight(settings(redis_server.url))
    assert found.unreachable is None and "volatile-lru" in found.warnings[0]


async def _stop_cycles(url: str, workarounds: frozenset[CoredisWorkaround], cycles: int
                       ) -> int:
    """Start and stop a subscribed state ``cycles`` times; how many stops raised."""
    failures = 0
    for _ in range(cycles):
        try:
            async with redis_states(url, workarounds=workarounds) as (state,):
                await state.lease(ID, "a", wait=0)
        except BaseException as exc:  # the defect surfaces as an exception group
            if not isinstance(exc, Exception):
                raise
            failures += 1
    return failures


async def test_coredis_pubsub_cancel_defect_needs_its_workaround(redis_server):
    # Without it a stopping hub often crashes with anyio.ClosedResourceError (about one stop
    # in two here); 30 clean stops in a row without it would be a 1-in-a-billion event.
    without = await _stop_cycles(redis_server.url, frozenset(), 30)
    assert without > 0, "the coredis defect did not show: is the workaround still needed?"
    assert await _stop_cycles(redis_server.url, ALL_COREDIS_WORKAROUNDS, 30) == 0
