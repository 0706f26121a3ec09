"""Hostile input on the fleet protocol, against a live hub process over real libp2p streams.

The codec itself is fuzzed in ``test_wire_fuzz.py``; here a fleet member (it holds the network
key, so it gets past the PSK and Noise) sends the hub frames no honest runner sends, and puts
forged or replayed envelopes where runners will find them. Each case has a defined outcome:

* a bad frame gets an ``Error`` reply and is counted in the hub's ``protocol_errors``; when the
  framing is lost (bad length prefix, EOF inside a frame) the hub answers once and ends the
  stream; the hub keeps serving that stream (when it can) and everyone else;
* a forged, tampered, truncated or replayed envelope is counted by the runner that meets it
  (``integrity_failures``) and never served: that runner asks GitHub and heals the hub's copy;
* an authentic envelope replayed after its sealed expiry is not served as fresh, whatever the
  hub claims.

Covered elsewhere and not repeated: a peer with the wrong secret (``test_fleet_integration``),
a plaintext dialer and a dialer with another network key (``test_host_network``).
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from test_faults_support import (
    REPO,
    START,
    Answers,
    assert_accounted,
    contents,
    figures,
    get,
    node_stats,
    session,
)

from github_p2p.core.cachekey import make_cache_key
from github_p2p.core.entry import CacheEntry
from github_p2p.core.keys import derive_fleet_keys, derive_network_key, entry_id
from github_p2p.core.sealing import seal_entry
from github_p2p.p2p.channel import MessageChannel
from github_p2p.p2p.host import HostSettings, RunningHost, dial, running_host
from github_p2p.p2p.messages import (
    REQUEST_TYPES,
    Entry,
    Error,
    FrameRejected,
    Get,
    Hello,
    Message,
    Ok,
    Put,
    StatsQuery,
    StatsReply,
)
from github_p2p.p2p.wire import PROTOCOL_ID, FrameDecoder, encode
from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "hostile-wire-fleet-secret"


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def body(op: int, meta: Any, payload: bytes = b"", *, version: int = 1) -> bytes:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return bytes([version, op]) + varint(len(raw)) + raw + payload


def frame(data: bytes) -> bytes:
    return varint(len(data)) + data


ZERO_ID = "00" * 32
#: Frames the hub must refuse one by one, keeping the stream: (frame, error code, rid).
SURVIVABLE: list[tuple[str, bytes, str, int | None]] = [
    ("unknown op", frame(body(0x42, {"rid": 5})), "unknown_op", 5),
    ("unknown version", frame(body(0x02, {"rid": 6, "entry_id": ZERO_ID}, version=2)),
     "bad_version", None),
    ("id of the wrong type", frame(body(0x02, {"rid": 7, "entry_id": 123})), "bad_message", 7),
    ("upper-case hex id", frame(body(0x02, {"rid": 8, "entry_id": "AB" * 32})),
     "bad_message", 8),
    ("wait of the wrong type", frame(body(0x05, {"rid": 9, "entry_id": ZERO_ID,
                                                 "wait": "soon"})), "bad_message", 9),
    ("wait past the bound", frame(body(0x05, {"rid": 10, "entry_id": ZERO_ID,
                                              "wait": 1e9})), "bad_message", 10),
    ("put without an envelope", frame(body(0x03, {"rid": 11, "entry_id": ZERO_ID,
                                                  "fresh_ttl": 1, "keep_ttl": 1})),
     "bad_message", 11),
    ("get carrying a payload", frame(body(0x02, {"rid": 12, "entry_id": ZERO_ID}, b"x")),
     "bad_message", 12),
    ("meta is a list", frame(body(0x07, [1, 2])), "bad_message", None),
    ("meta is not UTF-8", frame(body(0x07, b"\xff\xfe{}")), "bad_message", None),
    ("duplicate keys", frame(body(0x07, b'{"rid": 13, "rid": 14}')), "bad_message", None),
    ("NaN", frame(body(0x05, b'{"rid": 15, "entry_id": "' + ZERO_ID.encode()
                       + b'", "wait": NaN}')), "bad_message", None),
    ("meta longer than max_meta", frame(bytes([1, 0x07]) + varint(300_000) + b"{}"),
     "too_large", None),
    ("rid out of range", frame(body(0x07, {"rid": 2**40})), "bad_message", None),
    ("control characters in a name", frame(body(0x01, {"rid": 16, "role": "runner",
                                                       "arch": "X64", "runner": "a\x1b[2Jb",
                                                       "version": "1"})), "bad_message", 16),
    ("a response sent as a request", frame(body(0x80, {"rid": 17})), "unknown_op", 17),
    ("an error sent as a request",
     frame(body(0xFF, {"rid": 18, "code": "internal", "message": ""})), "unknown_op", 18),
]
#: Frames after which the framing is lost: one Error, then the hub ends the stream.
FATAL: list[tuple[str, bytes, str]] = [
    ("length prefix of 2**40", varint(2**40), "too_large"),
    ("length prefix past max_frame", varint(64 * 1024 * 1024), "too_large"),
    ("length varint of 11 bytes", b"\xff" * 11, "bad_message"),
    ("non-minimal length varint", b"\x80\x00", "bad_message"),
]


async def open_stream(me: RunningHost, hub: str) -> Any:
    peer_id = await dial(me, hub, 20)
    with trio.fail_after(20):
        return await me.host.new_stream(ID.from_base58(peer_id), [TProtocol(PROTOCOL_ID)])


async def next_message(stream: Any, decoder: FrameDecoder, timeout: float = 15
                       ) -> Message | None:
    """The hub's next message on ``stream``, or ``None`` once it ended the stream."""
    with trio.fail_after(timeout):
        while True:
            message = decoder.next_message()
            if message is not None or decoder.closed:
                return message
            try:
                data = await stream.read(65536)
            except Exception:  # reset or closed: the hub ended the stream
                return None
            decoder.receive_data(bytes(data))


async def stream_ended(stream: Any, decoder: FrameDecoder) -> bool:
    return await next_message(stream, decoder) is None


async def hostile_session(hub: str, psk: bytes) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with running_host(HostSettings(psk=psk)) as me:
        stream = await open_stream(me, hub)
        decoder = FrameDecoder()
        for name, data, code, rid in SURVIVABLE:
            await stream.write(data)
            reply = await next_message(stream, decoder)
            seen[name] = reply
            assert isinstance(reply, Error), (name, reply)
            assert (reply.code, reply.rid) == (code, rid), (name, reply)
        await stream.write(encode(StatsQuery(99)))  # the same stream still works
        stats = await next_message(stream, decoder)
        assert isinstance(stats, StatsReply)
        seen["stats"] = dict(stats.stats)

        for name, data, code in FATAL:
            stream = await open_stream(me, hub)
            decoder = FrameDecoder()
            await stream.write(data)
            reply = await next_message(stream, decoder)
            assert isinstance(reply, Error) and reply.code == code, (name, reply)
            assert await stream_ended(stream, decoder), name

        # EOF inside a frame: half a frame, then we close our side.
        stream = await open_stream(me, hub)
        await stream.write(varint(100) + b"\x01\x02" + b"x" * 10)
        await stream.close()
        await trio.sleep(0.5)

        # Garbage, then EOF: whatever it parses as, it gets Errors and the stream ends.
        stream = await open_stream(me, hub)
        decoder = FrameDecoder()
        await stream.write(GARBAGE)
        await stream.close()
        while (reply := await next_message(stream, decoder)) is not None:
            assert isinstance(reply, Error), reply
    return seen


GARBAGE = random.Random(8).randbytes(4096)


def rejections(data: bytes) -> int:
    """How many frames a hub must refuse in ``data`` followed by EOF (the same sans-I/O
    decoder, run here), stopping at the first rejection that loses the framing."""
    decoder = FrameDecoder()
    decoder.receive_data(data)
    decoder.receive_data(b"")
    refused = 0
    for _ in range(len(data) + 1):
        try:
            message = decoder.next_message()
        except FrameRejected as exc:
            refused += 1
            if exc.fatal:
                break
            continue
        if message is None:
            break
        refused += not isinstance(message, REQUEST_TYPES)
    return refused


async def honest_session(hub: str, psk: bytes) -> None:
    async with running_host(HostSettings(psk=psk)) as me:
        channel = MessageChannel(await open_stream(me, hub))
        ident = os.urandom(32)
        with trio.fail_after(30):
            await channel.send(Hello(1, "runner", "X64", "honest", "1"))
            assert isinstance(await channel.receive(), Ok)
            await channel.send(Put(2, ident, b"sealed", 60, 60))
            assert isinstance(await channel.receive(), Ok)
            await channel.send(Get(3, ident))
            reply = await channel.receive()
        assert isinstance(reply, Entry) and reply.envelope == b"sealed"


def test_live_hub_refuses_hostile_frames_counts_them_and_keeps_serving(tmp_path):
    paths = contents("hostile", 3)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET) as fleet:
        answers = Answers(sim, paths)
        hub = fleet.start_hub(timeout=START)
        runner = fleet.start_peer(timeout=START)
        psk = derive_network_key(SECRET)
        for path in paths:
            answers.check(path, get(runner, path, "ghs_before"))

        seen = trio.run(hostile_session, hub.multiaddr, psk)

        assert seen["stats"]["protocol_errors"] == len(SURVIVABLE)
        hub_stats = node_stats(hub)
        garbage = rejections(GARBAGE)
        assert garbage >= 1
        # Every hostile frame counted once: + the frame cut by EOF, + the garbage's.
        assert hub_stats["protocol_errors"] == len(SURVIVABLE) + len(FATAL) + 1 + garbage
        assert hub.process.poll() is None
        # Everyone else is still served: a fresh honest stream, and the runner's daemon.
        trio.run(honest_session, hub.multiaddr, psk)
        fresh = contents("after-hostile", 1)
        answers_after = Answers(sim, fresh)
        assert answers_after.check(fresh[0], get(runner, fresh[0], "ghs_after")) == "miss"
        assert answers.check(paths[0], get(runner, paths[0], "ghs_after")) == "hit-local"
        assert session().get(hub.endpoint + "/_p2p/health", timeout=30).status_code == 200
        figures("hostile-frames", survivable=len(SURVIVABLE), fatal=len(FATAL) + 1,
                garbage_rejections=garbage, protocol_errors=hub_stats["protocol_errors"],
                hub_crashes=0)


# --- forged and replayed envelopes -------------------------------------------------------


def fleet_id(api_url: str, path: str, secret: str = SECRET) -> bytes:
    """The entry id a runner of the test fleet uses for ``GET path`` (harness knowledge: the
    attacker only ever sees ids at the hub)."""
    keys = derive_fleet_keys(secret, REPO)
    return entry_id(keys, make_cache_key(api_url, "GET", path, (), {}, REPO).text)


async def forge(hub: str, psk: bytes, api_url: str, paths: dict[str, str]) -> dict[str, bytes]:
    """A member holding only the network key rewrites what the hub holds for ``paths``."""
    ids = {kind: fleet_id(api_url, path) for kind, path in paths.items()}
    async with running_host(HostSettings(psk=psk)) as me:
        channel = MessageChannel(await open_stream(me, hub))
        rid = iter(range(1, 1000))

        async def call(message: Any) -> Any:
            with trio.fail_after(30):
                await channel.send(message)
                return await channel.receive()

        originals: dict[str, bytes] = {}
        for kind, ident in ids.items():
            reply = await call(Get(next(rid), ident))
            assert isinstance(reply, Entry), (kind, reply)  # the harness computed the right id
            originals[kind] = reply.envelope

        flipped = bytearray(originals["flipped"])
        flipped[-20] ^= 0x01  # inside the AES-GCM ciphertext
        foreign_keys = derive_fleet_keys("some-other-fleet-secret", REPO)
        now = time.time()
        forged = CacheEntry(200, (("content-type", "application/json"),), b'{"forged": true}',
                            now, now + 3600)
        replacements = {
            "flipped": bytes(flipped),
            "replayed": originals["control"],  # authentic, but sealed for another id
            "foreign": seal_entry(foreign_keys, ids["foreign"], forged),
            "garbage": random.Random(3).randbytes(300),
            "truncated": originals["truncated"][:24],
        }
        for kind, envelope in replacements.items():
            reply = await call(Put(next(rid), ids[kind], envelope, 3600, 3600))
            assert isinstance(reply, Ok), (kind, reply)
        return originals


async def replay(hub: str, psk: bytes, ident: bytes, envelope: bytes) -> None:
    async with running_host(HostSettings(psk=psk)) as me:
        channel = MessageChannel(await open_stream(me, hub))
        with trio.fail_after(30):
            await channel.send(Put(1, ident, envelope, 3600, 3600))  # "fresh for an hour"
            assert isinstance(await channel.receive(), Ok)


def test_forged_and_replayed_envelopes_are_counted_and_never_served(tmp_path):
    kinds = ("flipped", "replayed", "foreign", "garbage", "truncated", "control")
    paths = dict(zip(kinds, contents("forged", len(kinds)), strict=True))
    old = f"/repos/{REPO}/contents/expiring/config.json"
    policy = tmp_path / "policy.yml"
    policy.write_text("rules:\n  - pattern: '/contents/expiring/'\n    ttl: 1\n"
                      "  - pattern: '/contents/'\n    ttl: 3600\n")
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET,
                       extra_env={"GITHUB_P2P_POLICY": str(policy)}) as fleet:
        sim.set_resource(old, {"version": 1})
        answers = Answers(sim, paths.values())
        hub = fleet.start_hub(timeout=START)
        first, second = (fleet.start_peer(wait=False) for _ in range(2))
        first.wait_ready(START)
        second.wait_ready(START)
        for path in [*paths.values(), old]:
            assert get(first, path, "ghs_first").headers["X-GitHub-P2P-Cache"] == "miss"
        psk = derive_network_key(SECRET)
        trio.run(forge, hub.multiaddr, psk, sim.url, paths)

        # An authentic envelope, replayed after the resource changed and its sealed TTL ran out.
        old_id = fleet_id(sim.url, old)
        stale_envelope = trio.run(_get_envelope, hub.multiaddr, psk, old_id)
        sim.set_resource(old, {"version": 2})
        time.sleep(1.5)
        trio.run(replay, hub.multiaddr, psk, old_id, stale_envelope)
        new_body = session().get(sim.url + old, headers={"Authorization": "Bearer ghs_ref"},
                                 timeout=30).content

        outcomes = {kind: answers.check(path, get(second, path, "ghs_second"))
                    for kind, path in paths.items()}
        assert outcomes == {**dict.fromkeys(kinds[:-1], "miss"), "control": "hit-peer"}
        resp = get(second, old, "ghs_second")
        assert resp.status_code == 200 and resp.content == new_body
        assert resp.headers["X-GitHub-P2P-Cache"] in ("miss", "revalidated")

        stats = node_stats(second)
        assert stats["integrity_failures"] == len(kinds) - 1
        assert stats["errors"] == 0
        # The second runner put GitHub's answer back: the hub's copies are healed.
        third = fleet.start_peer(timeout=START)
        for kind, path in paths.items():
            assert answers.check(path, get(third, path, "ghs_third")) == "hit-peer", kind
        assert node_stats(third)["integrity_failures"] == 0

        runner_calls = sum(r.token in ("ghs_first", "ghs_second", "ghs_third")
                           for r in sim.records())
        every = [node_stats(first), node_stats(second), node_stats(third)]
        assert_accounted(every, runner_calls, [len(kinds) + 1, len(kinds) + 1, len(kinds)])
        figures("forged-envelopes", forged=len(kinds) - 1,
                integrity_failures=stats["integrity_failures"], served_forged=0,
                expired_replay_served_as_fresh=0)


async def _get_envelope(hub: str, psk: bytes, ident: bytes) -> bytes:
    async with running_host(HostSettings(psk=psk)) as me:
        channel = MessageChannel(await open_stream(me, hub))
        with trio.fail_after(30):
            await channel.send(Get(1, ident))
            reply = await channel.receive()
        assert isinstance(reply, Entry)
        return reply.envelope
