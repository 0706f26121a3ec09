"""Unit tests of the sans-I/O wire codec (github_p2p.p2p.wire)."""

from __future__ import annotations

import json
import time
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from github_p2p.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from github_p2p.p2p.messages import Report
from github_p2p.p2p.queue_messages import (
    QueueAck,
    QueueClaim,
    QueueClaimed,
    QueueComplete,
    QueueHeartbeat,
    QueueRefused,
    QueueStatusQuery,
    QueueStatusReply,
    QueueSubmit,
    QueueSubmitted,
    pack_items,
)
from github_p2p.p2p.wire import (
    MESSAGE_TYPES,
    PROTOCOL_ID,
    REQUEST_TYPES,
    RESPONSE_TYPES,
    Delete,
    Entry,
    Error,
    FrameDecoder,
    FrameRejected,
    Get,
    Hello,
    Lease,
    LeaseReply,
    LimitNote,
    Message,
    NotFound,
    Ok,
    PeersQuery,
    PeersReply,
    Put,
    Release,
    Scalar,
    StatsQuery,
    StatsReply,
    WireLimits,
    decode_body,
    encode,
    error_reply_for,
)

EID = bytes(range(32))
EID_HEX = EID.hex()

SAMPLES: list[Message] = [
    Hello(1, "runner", "X64", "GitHub Actions 7", "0.1.0"),
    Hello(2, "bootstrap", "ARM64", "hub-eu", "0.1.0"),
    Hello(2, "runner", "X64", "r", "0.1.0", "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"),
    Get(3, EID),
    Put(4, EID, b"\x00sealed\xff" * 10, 60.0, 3600.0, None),
    Put(5, EID, b"e", 0.0, 0.0, "lease-abc"),
    Put(5, EID, b"e", 0.0, 0.0, None, tag=bytes(32)),
    Delete(6, EID),
    Lease(7, EID, 30.0),
    Release(8, EID, "lease-abc"),
    StatsQuery(9),
    PeersQuery(10),
    Report(10, {"requests": 40, "api_calls_made": 7, "hit_rate": 0.825}),
    Report(10, {}),
    Ok(11),
    Entry(12, EID, b"envelope", True, 1.5),
    NotFound(13, EID),
    LeaseReply(14, EID, "hit", b"env", True, None, 0.0),
    LeaseReply(15, EID, "granted", b"stale", False, "tok", 30.0),
    LeaseReply(16, EID, "granted", b"", False, "tok", 30.0),
    LeaseReply(17, EID, "filled", b"env", True, None, 0.0),
    LeaseReply(18, EID, "timeout", b"", False, None, 0.0),
    LeaseReply(18, EID, "granted", b"", False, "tok", 30.0, {"core": 1_800_000_060.5}),
    LimitNote(23, "core", 1_800_000_060.0),
    StatsReply(19, {"entries": 3, "hit_rate": 0.5, "version": "0.1.0"}),
    PeersReply(20, [{"peer_id": "12D3KooW", "last_seen": 1.5, "port": 9000}, {}]),
    PeersReply(21, []),
    Error(22, "not_found", "no such lease"),
    Error(None, "too_large", ""),
    Ok(2**32 - 1),
    Ok(0),
    # The work queue's messages (p2p/queue_messages.py; more in test_queue_wire.py).
    QueueSubmit(30, EID, 1, 60.0, 3, False, pack_items([(EID, b"sealed item")])),
    QueueClaim(31, EID, 2, "runner-1", 20.0),
    QueueHeartbeat(32, EID, 1, 0, "tok"),
    QueueComplete(33, EID, 1, 0, "tok", True),
    QueueStatusQuery(34, EID, 1, 0.0),
    QueueSubmitted(35, True, 1, 0),
    QueueClaimed(36, 0, "tok", 60.0, 1, b"sealed item"),
    QueueAck(37, 0, "done", "done", 0.0),
    QueueStatusReply(38, 0, 1, 0, 0, 0, [("runner-1", 0, 59.0)]),
    QueueRefused(39, "stale", "lease lapsed"),
]


def frame_of(
    op: int, meta: Any, payload: bytes = b"", *, version: int = 1, raw_meta: bytes | None = None
) -> bytes:
    """A hand-built frame, to send what encode() refuses to."""
    meta_bytes = raw_meta if raw_meta is not None else json.dumps(meta).encode()
    body = bytes((version, op)) + varint(len(meta_bytes)) + meta_bytes + payload
    return varint(len(body)) + body


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_all(data: bytes, limits: WireLimits | None = None) -> list[Message]:
    decoder = FrameDecoder(limits) if limits else FrameDecoder()
    decoder.receive_data(data)
    out = []
    while (message := decoder.next_message()) is not None:
        out.append(message)
    return out


def rejected(frame: bytes, limits: WireLimits | None = None) -> FrameRejected:
    with pytest.raises(FrameRejected) as info:
        decode_all(frame, limits)
    return info.value


# --- shape of the protocol ---------------------------------------------------------------------


def test_protocol_id_and_op_numbers_are_fixed() -> None:
    assert PROTOCOL_ID == "/github-p2p/cache/1.0.0"
    ops = {cls.__name__: cls.OP for cls in MESSAGE_TYPES.values()}
    assert ops == {
        "Hello": 0x01, "Get": 0x02, "Put": 0x03, "Delete": 0x04, "Lease": 0x05,
        "Release": 0x06, "StatsQuery": 0x07, "PeersQuery": 0x08, "Report": 0x09,
        "LimitNote": 0x0F, "Ok": 0x80, "Entry": 0x81,
        "NotFound": 0x82, "LeaseReply": 0x83, "StatsReply": 0x84, "PeersReply": 0x85,
        "Error": 0xFF,
        "QueueSubmit": 0x10, "QueueClaim": 0x11, "QueueHeartbeat": 0x12,
        "QueueComplete": 0x13, "QueueStatusQuery": 0x14,
        "QueueSubmitted": 0x90, "QueueClaimed": 0x91, "QueueAck": 0x92,
        "QueueStatusReply": 0x93, "QueueRefused": 0x94,
    }  # fmt: skip
    assert all(cls.OP < 0x80 for cls in REQUEST_TYPES)
    assert all(cls.OP >= 0x80 for cls in RESPONSE_TYPES)


def test_frame_layout_is_pinned() -> None:
    # Another implementation must produce and accept exactly these bytes.
    assert encode(Ok(9)) == bytes.fromhex("0c 01 80 09") + b'{"rid":9}'
    frame = encode(Entry(1, EID, b"ENV", False, 2.0))
    meta = f'{{"rid":1,"entry_id":"{EID_HEX}","fresh":false,"age":2.0}}'.encode()
    body = b"\x01\x81" + varint(len(meta)) + meta + b"ENV"
    assert frame == varint(len(body)) + body


def test_report_frame_is_pinned() -> None:
    meta = b'{"rid":3,"stats":{"requests":12,"hit_rate":0.5}}'
    body = b"\x01\x09" + varint(len(meta)) + meta
    assert encode(Report(3, {"requests": 12, "hit_rate": 0.5})) == varint(len(body)) + body


def test_every_message_type_has_a_sample() -> None:
    assert {type(m) for m in SAMPLES} == set(MESSAGE_TYPES.values())


# --- round trips and feeding -----------------------------------------------------------------


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    frame = encode(message)
    assert decode_all(frame) == [message]
    prefix_len = len(frame) - len(decode_body_bytes(frame))
    assert decode_body(frame[prefix_len:]) == message


def decode_body_bytes(frame: bytes) -> bytes:
    size, shift, index = 0, 0, 0
    while True:
        byte = frame[index]
        size |= (byte & 0x7F) << shift
        index += 1
        shift += 7
        if not byte & 0x80:
            return frame[index : index + size]


def test_frames_fed_byte_by_byte() -> None:
    stream = b"".join(encode(m) for m in SAMPLES)
    decoder = FrameDecoder()
    out: list[Message] = []
    for index in range(len(stream)):
        decoder.receive_data(stream[index : index + 1])
        message = decoder.next_message()
        if message is not None:
            out.append(message)
            assert decoder.next_message() is None
    assert out == SAMPLES
    decoder.receive_data(b"")
    assert decoder.next_message() is None
    assert decoder.closed


def test_several_frames_in_one_chunk_and_a_split_frame() -> None:
    stream = b"".join(encode(m) for m in SAMPLES)
    cut = len(stream) - 5
    decoder = FrameDecoder()
    decoder.receive_data(stream[:cut])
    out = []
    while (message := decoder.next_message()) is not None:
        out.append(message)
    assert out == SAMPLES[:-1]
    assert not decoder.closed
    decoder.receive_data(stream[cut:])
    assert decoder.next_message() == SAMPLES[-1]
    assert decoder.next_message() is None


def test_unknown_meta_keys_are_ignored_and_null_fields_may_be_left_out() -> None:
    meta = {"rid": 4, "entry_id": EID_HEX, "fresh_ttl": 1, "keep_ttl": 2, "future": [1, {}]}
    (message,) = decode_all(frame_of(0x03, meta, b"env"))
    assert message == Put(4, EID, b"env", 1.0, 2.0, None)
    assert isinstance(message, Put) and type(message.fresh_ttl) is float


def test_clean_eof_is_not_an_error() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode(Ok(1)))
    decoder.receive_data(b"")
    assert not decoder.closed  # a frame is still waiting
    assert decoder.next_message() == Ok(1)
    assert decoder.next_message() is None
    assert decoder.closed
    with pytest.raises(LocalProtocolError):
        decoder.receive_data(b"more")


# --- framing errors ----------------------------------------------------------------------------


def test_oversized_length_prefix_is_rejected_before_the_body_arrives() -> None:
    limits = WireLimits(max_frame=1000, max_meta=100, max_envelope=800)
    decoder = FrameDecoder(limits)
    decoder.receive_data(varint(1001))  # nothing of the body yet
    with pytest.raises(FrameRejected) as info:
        decoder.next_message()
    assert (info.value.code, info.value.rid, info.value.fatal) == ("too_large", None, True)
    decoder.receive_data(encode(Ok(1)))
    with pytest.raises(FrameRejected):  # framing is lost for good
        decoder.next_message()
    assert not decoder.closed


def test_default_limit_refuses_a_prefix_just_above_max_frame() -> None:
    limits = WireLimits()
    decoder = FrameDecoder()
    decoder.receive_data(varint(limits.max_frame))
    assert decoder.next_message() is None  # legal size: waits for the body
    decoder = FrameDecoder()
    decoder.receive_data(varint(limits.max_frame + 1))
    with pytest.raises(FrameRejected, match="max_frame"):
        decoder.next_message()


def test_frame_of_exactly_max_frame_is_accepted() -> None:
    limits = WireLimits(max_frame=200, max_meta=120, max_envelope=150)
    meta = f'{{"rid":1,"entry_id":"{EID_HEX}","fresh":true,"age":0}}'.encode()
    payload = b"x" * (200 - 2 - 1 - len(meta))
    frame = frame_of(0x81, None, payload, raw_meta=meta)
    assert decode_all(frame, limits) == [Entry(1, EID, payload, True, 0.0)]
    assert len(frame) == 2 + 200


@pytest.mark.parametrize(
    "prefix",
    [b"\x80\x00", b"\x81\x00", b"\xff\x80\x00", b"\x80" * 10 + b"\x01", b"\xff" * 11],
    ids=["zero-non-minimal", "one-non-minimal", "two-byte-padding", "11-bytes", "all-ones"],
)
def test_non_minimal_or_overlong_length_prefix(prefix: bytes) -> None:
    error = rejected(prefix)
    assert (error.code, error.rid, error.fatal) == ("bad_message", None, True)


def test_huge_ten_byte_prefix_is_too_large() -> None:
    error = rejected(b"\xff" * 9 + b"\x01")
    assert (error.code, error.fatal) == ("too_large", True)


@pytest.mark.parametrize("cut", [1, 2, 10, -1])
def test_eof_inside_a_frame(cut: int) -> None:
    frame = encode(Put(1, EID, b"x" * 300, 1.0, 2.0))  # two-byte prefix
    decoder = FrameDecoder()
    decoder.receive_data(frame[:cut])
    assert decoder.next_message() is None
    decoder.receive_data(b"")
    with pytest.raises(FrameRejected) as info:
        decoder.next_message()
    assert (info.value.code, info.value.fatal) == ("bad_message", True)
    assert not decoder.closed


def test_unknown_version_is_skipped_with_bad_version() -> None:
    stream = frame_of(0x02, {"rid": 5, "entry_id": EID_HEX}, version=2) + encode(Ok(6))
    decoder = FrameDecoder()
    decoder.receive_data(stream)
    with pytest.raises(FrameRejected) as info:
        decoder.next_message()
    # A v2 body may be laid out differently, so its rid is not guessed at.
    assert (info.value.code, info.value.rid, info.value.fatal) == ("bad_version", None, False)
    assert error_reply_for(info.value).code == "bad_version"
    assert decoder.next_message() == Ok(6)


def test_unknown_op_carries_the_rid_and_the_stream_goes_on() -> None:
    stream = frame_of(0x42, {"rid": 77}) + encode(StatsQuery(78))
    decoder = FrameDecoder()
    decoder.receive_data(stream)
    with pytest.raises(FrameRejected) as info:
        decoder.next_message()
    assert (info.value.code, info.value.rid, info.value.fatal) == ("unknown_op", 77, False)
    reply = error_reply_for(info.value)
    assert (reply.rid, reply.code) == (77, "unknown_op")
    assert decode_all(encode(reply)) == [reply]
    assert decoder.next_message() == StatsQuery(78)


def test_unknown_op_with_unreadable_meta_is_a_bad_message() -> None:
    error = rejected(frame_of(0x42, None, raw_meta=b"{"))
    assert (error.code, error.rid) == ("bad_message", None)


# --- body errors -------------------------------------------------------------------------------

PUT_META = {"rid": 7, "entry_id": EID_HEX, "fresh_ttl": 1.0, "keep_ttl": 2.0}
LEASE_REPLY_META = {
    "rid": 7, "entry_id": EID_HEX, "outcome": "granted", "fresh": False,
    "lease_token": "t", "lease_ttl": 1.0,
}  # fmt: skip
HELLO_META = {"rid": 7, "role": "runner", "arch": "X64", "runner": "r", "version": "1"}


def changed(meta: dict[str, Any], **updates: Any) -> dict[str, Any]:
    return {**meta, **updates}


def without(meta: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != key}


BAD_BODIES: dict[str, tuple[int, dict[str, Any], bytes]] = {
    "rid-as-string": (0x03, changed(PUT_META, rid="7"), b"e"),
    "rid-as-bool": (0x03, changed(PUT_META, rid=True), b"e"),
    "rid-negative": (0x03, changed(PUT_META, rid=-1), b"e"),
    "rid-too-big": (0x03, changed(PUT_META, rid=2**32), b"e"),
    "rid-as-float": (0x03, changed(PUT_META, rid=7.0), b"e"),
    "rid-missing": (0x03, without(PUT_META, "rid"), b"e"),
    "id-not-hex": (0x03, changed(PUT_META, entry_id="g" * 64), b"e"),
    "id-upper-hex": (0x03, changed(PUT_META, entry_id=EID_HEX.upper()), b"e"),
    "id-with-spaces": (0x03, changed(PUT_META, entry_id=" " + EID_HEX[1:]), b"e"),
    "id-short": (0x03, changed(PUT_META, entry_id=EID_HEX[:62]), b"e"),
    "id-long": (0x03, changed(PUT_META, entry_id=EID_HEX + "00"), b"e"),
    "id-as-int": (0x03, changed(PUT_META, entry_id=5), b"e"),
    "id-missing": (0x03, without(PUT_META, "entry_id"), b"e"),
    "ttl-negative": (0x03, changed(PUT_META, fresh_ttl=-1.0), b"e"),
    "ttl-as-string": (0x03, changed(PUT_META, fresh_ttl="1"), b"e"),
    "ttl-as-bool": (0x03, changed(PUT_META, keep_ttl=True), b"e"),
    "ttl-int-overflow": (0x03, changed(PUT_META, keep_ttl=10**400), b"e"),
    "keep-below-fresh": (0x03, changed(PUT_META, fresh_ttl=5.0, keep_ttl=4.0), b"e"),
    "ttl-missing": (0x03, without(PUT_META, "keep_ttl"), b"e"),
    "put-empty-envelope": (0x03, PUT_META, b""),
    "token-as-int": (0x03, changed(PUT_META, lease_token=1), b"e"),
    "token-empty": (0x03, changed(PUT_META, lease_token=""), b"e"),
    "token-too-long": (0x03, changed(PUT_META, lease_token="t" * 257), b"e"),
    "token-control-char": (0x03, changed(PUT_META, lease_token="a\nb"), b"e"),
    "token-lone-surrogate": (0x03, changed(PUT_META, lease_token="\ud800"), b"e"),
    "tag-not-hex": (0x03, changed(PUT_META, tag="z" * 64), b"e"),
    "tag-short": (0x03, changed(PUT_META, tag="00"), b"e"),
    "payload-on-get": (0x02, {"rid": 7, "entry_id": EID_HEX}, b"x"),
    "wait-too-long": (0x05, {"rid": 7, "entry_id": EID_HEX, "wait": 60.5}, b""),
    "wait-negative": (0x05, {"rid": 7, "entry_id": EID_HEX, "wait": -0.5}, b""),
    "fresh-as-int": (0x81, {"rid": 7, "entry_id": EID_HEX, "fresh": 1, "age": 0}, b"e"),
    "age-negative": (0x81, {"rid": 7, "entry_id": EID_HEX, "fresh": True, "age": -1}, b"e"),
    "entry-empty": (0x81, {"rid": 7, "entry_id": EID_HEX, "fresh": True, "age": 0}, b""),
    "outcome-unknown": (0x83, changed(LEASE_REPLY_META, outcome="maybe"), b""),
    "granted-no-token": (0x83, changed(LEASE_REPLY_META, lease_token=None), b""),
    "hit-with-token": (0x83, changed(LEASE_REPLY_META, outcome="hit", fresh=True), b"e"),
    "hit-no-envelope": (0x83, changed(LEASE_REPLY_META, outcome="hit", lease_token=None), b""),
    "fresh-without-envelope": (0x83, changed(LEASE_REPLY_META, fresh=True), b""),
    "role-unknown": (0x01, changed(HELLO_META, role="admin"), b""),
    "runner-too-long": (0x01, changed(HELLO_META, runner="r" * 257), b""),
    "arch-empty": (0x01, changed(HELLO_META, arch=""), b""),
    "version-as-list": (0x01, changed(HELLO_META, version=["1"]), b""),
    "stats-as-list": (0x84, {"rid": 7, "stats": [1]}, b""),
    "stats-nested": (0x84, {"rid": 7, "stats": {"a": {"b": 1}}}, b""),
    "stats-bool": (0x84, {"rid": 7, "stats": {"a": True}}, b""),
    "stats-null": (0x84, {"rid": 7, "stats": {"a": None}}, b""),
    "stats-int-over-64-bits": (0x84, {"rid": 7, "stats": {"a": 2**63}}, b""),
    "stats-long-key": (0x84, {"rid": 7, "stats": {"k" * 257: 1}}, b""),
    "report-as-list": (0x09, {"rid": 7, "stats": [1]}, b""),
    "report-nested": (0x09, {"rid": 7, "stats": {"a": {"b": 1}}}, b""),
    "report-bool": (0x09, {"rid": 7, "stats": {"a": False}}, b""),
    "report-missing": (0x09, {"rid": 7}, b""),
    "report-control-char": (0x09, {"rid": 7, "stats": {"a": "x\x00"}}, b""),
    "report-with-payload": (0x09, {"rid": 7, "stats": {}}, b"x"),
    "peers-as-object": (0x85, {"rid": 7, "peers": {"a": 1}}, b""),
    "peer-as-string": (0x85, {"rid": 7, "peers": ["p"]}, b""),
    "error-code-unknown": (0xFF, {"rid": 7, "code": "oops", "message": ""}, b""),
    "error-message-too-long": (0xFF, {"rid": 7, "code": "busy", "message": "m" * 1025}, b""),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_invalid_fields_are_rejected_with_the_rid(case: str) -> None:
    op, meta, payload = BAD_BODIES[case]
    error = rejected(frame_of(op, meta, payload))
    assert (error.code, error.fatal) == ("bad_message", False)
    readable_rid = meta.get("rid") == 7 and type(meta.get("rid")) is int
    assert error.rid == (7 if readable_rid else None)
    assert isinstance(error, RemoteProtocolError)


def test_number_literal_overflowing_to_infinity_is_rejected() -> None:
    meta = f'{{"rid":7,"entry_id":"{EID_HEX}","fresh_ttl":1,"keep_ttl":1e999}}'.encode()
    error = rejected(frame_of(0x03, None, b"e", raw_meta=meta))
    assert (error.code, error.rid) == ("bad_message", 7)


RAW_METAS: dict[str, bytes] = {
    "array": b"[1, 2]",
    "string": b'"rid"',
    "number": b"7",
    "null": b"null",
    "invalid-utf8": b'{"rid": 7, "x": "\xff\xfe"}',
    "utf8-bom": b'\xef\xbb\xbf{"rid": 7}',
    "nan": b'{"rid": 7, "x": NaN}',
    "infinity": b'{"rid": 7, "x": -Infinity}',
    "duplicate-key": b'{"rid": 7, "rid": 8}',
    "truncated": b'{"rid": 7',
    "trailing-garbage": b'{"rid": 7} x',
    "deep-nesting": b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "huge-int-literal": b'{"x": ' + b"9" * 5000 + b"}",
    "empty": b"",
}


@pytest.mark.parametrize("case", list(RAW_METAS))
def test_meta_that_is_not_a_json_object(case: str) -> None:
    error = rejected(frame_of(0x80, None, raw_meta=RAW_METAS[case]))
    assert (error.code, error.rid, error.fatal) == ("bad_message", None, False)


def test_meta_length_errors() -> None:
    body = b"\x01\x80" + varint(20) + b'{"rid":1}'  # meta_len runs past the body
    assert rejected(varint(len(body)) + body).code == "bad_message"
    body = b"\x01\x80\x89\x00" + b'{"rid":1}'  # non-minimal meta_len
    assert rejected(varint(len(body)) + body).code == "bad_message"
    body = b"\x01\x80\x80"  # ends inside meta_len
    assert rejected(varint(len(body)) + body).code == "bad_message"
    for body in (b"", b"\x01"):  # shorter than the header
        assert rejected(varint(len(body)) + body).code == "bad_message"
    limits = WireLimits(max_frame=1000, max_meta=10, max_envelope=500)
    error = rejected(frame_of(0x80, {"rid": 1, "pad": "xxxx"}), limits)
    assert (error.code, error.fatal) == ("too_large", False)


def test_payload_above_max_envelope_is_too_large() -> None:
    limits = WireLimits(max_frame=1000, max_meta=200, max_envelope=100)
    meta = {"rid": 3, "entry_id": EID_HEX, "fresh": True, "age": 0}
    error = rejected(frame_of(0x81, meta, b"x" * 101), limits)
    assert (error.code, error.rid) == ("too_large", 3)
    assert decode_all(frame_of(0x81, meta, b"x" * 100), limits)


# --- building and sending ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Get(True, EID),
        lambda: Get(-1, EID),
        lambda: Get(1, EID[:31]),
        lambda: Get(1, EID.hex()),  # type: ignore[arg-type]
        lambda: Put(1, EID, b"", 1.0, 2.0),
        lambda: Put(1, EID, b"e", float("nan"), 2.0),
        lambda: Put(1, EID, b"e", 2.0, 1.0),
        lambda: Lease(1, EID, 61),
        lambda: Hello(1, "peer", "X64", "r", "1"),  # type: ignore[arg-type]
        lambda: Hello(1, "runner", "X64", "r\x1b[31m", "1"),
        lambda: Hello(1, "runner", "X64", "r", "1", "not a jwt"),
        lambda: Hello(1, "runner", "X64", "r", "1", "a.b." + "c" * 8200),
        lambda: Entry(1, EID, b"e", "yes", 0.0),  # type: ignore[arg-type]
        lambda: LeaseReply(1, EID, "timeout", b"", False, "token", 0.0),
        lambda: StatsReply(1, {"a": [1]}),  # type: ignore[dict-item]
        lambda: StatsReply(1, {"a": float("inf")}),
        lambda: Report(1, {"a": None}),  # type: ignore[dict-item]
        lambda: Report(1, {"": 1}),
        lambda: PeersReply(1, "peers"),  # type: ignore[arg-type]
        lambda: Error(1, "teapot", ""),  # type: ignore[arg-type]
    ],
)
def test_building_an_invalid_message_is_a_local_error(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_messages_are_frozen_values() -> None:
    stats = {"a": 1}
    reply = StatsReply(1, stats)
    stats["a"] = 2
    assert reply.stats == {"a": 1}
    with pytest.raises(TypeError):
        reply.stats["a"] = 3  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        reply.rid = 2  # type: ignore[misc]
    peers = PeersReply(1, [{"p": "x"}])
    assert isinstance(peers.peers, tuple)
    assert Put(1, EID, bytearray(b"e"), 1, 2).envelope == b"e"  # type: ignore[arg-type]
    assert "envelope" not in repr(Entry(1, EID, b"secret-bytes", True, 0.0))


def test_encode_rejects_what_does_not_fit() -> None:
    limits = WireLimits()
    with pytest.raises(LocalProtocolError, match="max_envelope"):
        encode(Entry(1, EID, b"x" * (limits.max_envelope + 1), True, 0.0))
    encode(Entry(1, EID, b"x" * limits.max_envelope, True, 0.0))  # exactly the bound fits
    big_stats = StatsReply(1, {f"k{i}": "v" * 200 for i in range(2000)})
    with pytest.raises(LocalProtocolError, match="max_meta"):
        encode(big_stats)
    tight = WireLimits(max_frame=120, max_meta=110, max_envelope=100)
    with pytest.raises(LocalProtocolError, match="max_frame"):
        encode(Entry(1, EID, b"x" * 50, True, 0.0), tight)
    with pytest.raises(LocalProtocolError):
        encode("not a message")  # type: ignore[arg-type]


def test_peers_reply_for_a_large_fleet_fits_the_default_limits() -> None:
    record: dict[str, Scalar] = {
        "peer_id": "12D3KooW" + "x" * 44, "role": "runner", "arch": "ARM64",
        "runner": "GitHub Actions 1234", "last_seen": 1700000000.123, "port": 9001,
        "addrs": "/ip4/203.0.113.7/tcp/9001",
    }  # fmt: skip
    reply = PeersReply(1, [record] * 500)
    assert decode_all(encode(reply)) == [reply]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_frame": 0}, {"max_meta": -1}, {"max_envelope": True}, {"max_meta": 5 * 2**20},
     {"max_frame": 2**63}],
)  # fmt: skip
def test_limits_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        WireLimits(**kwargs)


def test_error_reply_for_any_remote_error() -> None:
    reply = error_reply_for(RemoteProtocolError("bad\nthing\x00" + "y" * 2000))
    assert (reply.rid, reply.code) == (None, "bad_message")
    assert reply.message.startswith("bad?thing?") and len(reply.message) == 1024
    fatal = rejected(varint(2**40))
    reply = error_reply_for(fatal)
    assert (reply.rid, reply.code) == (None, "too_large")
    assert decode_all(encode(reply)) == [reply]


def test_endpoints_over_a_fake_link_match_responses_by_rid() -> None:
    """A runner pipelines requests; the hub answers out of order over one stream each way."""
    runner_in, hub_in = FrameDecoder(), FrameDecoder()
    requests: list[Message] = [Get(1, EID), Lease(2, EID, 5.0), StatsQuery(3)]
    hub_in.receive_data(b"".join(encode(r) for r in requests))
    answers: list[Message] = []
    while (request := hub_in.next_message()) is not None:
        assert isinstance(request, REQUEST_TYPES)
        answers.append(
            NotFound(request.rid, EID) if isinstance(request, Get)
            else LeaseReply(request.rid, EID, "granted", lease_token="t", lease_ttl=10.0)
            if isinstance(request, Lease)
            else StatsReply(request.rid, {"entries": 0})
        )  # fmt: skip
    wire_bytes = b"".join(encode(a) for a in reversed(answers))
    for index in range(0, len(wire_bytes), 7):  # small, arbitrary TCP-like chunks
        runner_in.receive_data(wire_bytes[index : index + 7])
    got: dict[int | None, Message] = {}
    while (reply := runner_in.next_message()) is not None:
        got[reply.rid] = reply
    assert set(got) == {1, 2, 3}
    assert isinstance(got[2], LeaseReply) and got[2].lease_token == "t"


# --- cost -----------------------------------------------------------------------------------------


def test_one_mib_entry_round_trip_is_fast_and_linear() -> None:
    entry = Entry(1, EID, bytes(range(256)) * 4096, True, 3.0)
    start = time.perf_counter()
    for _ in range(10):
        frame = encode(entry)
        assert decode_all(frame) == [entry]
    per_trip = (time.perf_counter() - start) / 10
    assert per_trip < 0.05  # measured ~1 ms; generous for a loaded CI machine
    # 64 Ki chunks of 16 bytes: a decoder that re-copied its buffer per chunk would move
    # 32 GiB here and take many seconds.
    decoder = FrameDecoder()
    start = time.perf_counter()
    for index in range(0, len(frame), 16):
        decoder.receive_data(frame[index : index + 16])
        message = decoder.next_message()
    assert time.perf_counter() - start < 1.0
    assert message == entry


def test_a_limit_note_names_only_a_known_budget() -> None:
    """A member cannot fill the hub's rate-limit table, and every lease reply, with made-up
    budget names (the reply carries at most a few)."""
    assert LimitNote(1, "graphql", 1.0).resource == "graphql"
    with pytest.raises(LocalProtocolError):
        LimitNote(1, "made-up-budget-1", 1.0)
    frame = frame_of(0x0F, {"rid": 4, "resource": "made-up-budget-1", "until": 1.0})
    decoder = FrameDecoder()
    decoder.receive_data(frame)
    with pytest.raises(FrameRejected) as refused:
        decoder.next_message()
    assert refused.value.code == "bad_message" and refused.value.rid == 4
