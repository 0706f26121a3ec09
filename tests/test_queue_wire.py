"""The work-queue messages on the wire: round trips, bounds, and hostile frames."""

from __future__ import annotations

import json

import pytest

from github_p2p.errors import LocalProtocolError
from github_p2p.p2p.queue_messages import (
    MAX_ITEM_ENVELOPE,
    MAX_QUEUE_ITEMS,
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
    unpack_items,
)
from github_p2p.p2p.wire import REQUEST_TYPES, FrameDecoder, FrameRejected, decode_body, encode

QID = bytes(range(32))
ITEMS = [(bytes([1]) * 32, b"sealed-a"), (bytes([2]) * 32, b"sealed-bb")]

MESSAGES = [
    QueueSubmit(1, QID, 2, 60.0, 3, False, pack_items(ITEMS)),
    QueueSubmit(2, QID, 1, 1.0, 1, True, b""),
    QueueClaim(3, QID, 1, "runner-1", 20.0),
    QueueHeartbeat(4, QID, 1, 9, "tok"),
    QueueComplete(5, QID, 1, 9, "tok", False),
    QueueStatusQuery(6, QID, 1, 30.0),
    QueueSubmitted(7, True, 10, 2),
    QueueClaimed(8, 3, "tok", 60.0, 1, b"env"),
    QueueAck(9, 3, "leased", "renewed", 59.5),
    QueueStatusReply(10, 1, 2, 3, 4, 1, [("r1", 3, 12.5), ("r2", 4, 0.0)]),
    QueueRefused(11, "conflict", "differs", 3, 10, b"env"),
    QueueRefused(12, "stale", "lapsed"),
]


def body(message: object) -> bytes:
    frame = encode(message)  # type: ignore[arg-type]
    decoder = FrameDecoder()
    decoder.receive_data(frame)
    decoded = decoder.next_message()
    assert decoded == message
    return frame


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message):
    body(message)


def test_queue_requests_are_requests():
    assert all(isinstance(m, REQUEST_TYPES) for m in MESSAGES[:6])
    assert not any(isinstance(m, REQUEST_TYPES) for m in MESSAGES[6:])


def test_the_queue_id_travels_as_hex_and_items_as_the_payload():
    frame = encode(MESSAGES[0])
    assert QID.hex().encode() in frame and b"sealed-a" in frame
    assert MESSAGES[0].items() == tuple(ITEMS)


def test_pack_bounds():
    with pytest.raises(LocalProtocolError):
        pack_items([(b"short", b"x")])
    with pytest.raises(LocalProtocolError):
        pack_items([(bytes(32), b"")])
    with pytest.raises(LocalProtocolError):
        pack_items([(bytes(32), b"x" * (MAX_ITEM_ENVELOPE + 1))])
    packed = pack_items(ITEMS)
    for cut in range(1, len(packed)):
        if cut in (len(packed) - len(b"sealed-bb") - 34,):
            continue  # a cut between two items leaves a valid, shorter list
        with pytest.raises(LocalProtocolError):
            unpack_items(packed[:cut])


def test_too_many_items_are_refused():
    many = pack_items([(bytes(32), b"x")] * MAX_QUEUE_ITEMS)
    assert len(unpack_items(many)) == MAX_QUEUE_ITEMS
    with pytest.raises(LocalProtocolError, match="more than"):
        unpack_items(many + pack_items([(bytes(32), b"x")]))


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out + bytes((value,)))


def _frame(op: int, meta: dict[str, object], payload: bytes = b"") -> bytes:
    """A frame body built by hand, as a hostile peer would."""
    raw = json.dumps(meta).encode()
    return bytes((1, op)) + _varint(len(raw)) + raw + payload


@pytest.mark.parametrize("meta, payload", [
    ({"rid": 5, "queue_id": "zz", "attempt": 1, "lease_ttl": 60, "max_attempts": 3,
      "retry_failed": False}, b""),
    ({"rid": 5, "queue_id": QID.hex(), "attempt": 0, "lease_ttl": 60, "max_attempts": 3,
      "retry_failed": False}, b""),
    ({"rid": 5, "queue_id": QID.hex(), "attempt": 1, "lease_ttl": 0.5, "max_attempts": 3,
      "retry_failed": False}, b""),
    ({"rid": 5, "queue_id": QID.hex(), "attempt": 1, "lease_ttl": 60, "max_attempts": 3,
      "retry_failed": 1}, b""),
    ({"rid": 5, "queue_id": QID.hex(), "attempt": 1, "lease_ttl": 60, "max_attempts": 3,
      "retry_failed": False}, b"\x01" * 33),
])
def test_bad_submissions_are_rejected_with_their_rid(meta, payload):
    raw = _frame(0x10, meta, payload)
    assert raw
    with pytest.raises(FrameRejected) as caught:
        decode_body(raw)
    assert caught.value.rid == 5 and caught.value.code == "bad_message"
    assert not caught.value.fatal


@pytest.mark.parametrize("op, meta", [
    (0x11, {"rid": 1, "queue_id": QID.hex(), "attempt": 1, "holder": "", "wait": 1}),
    (0x11, {"rid": 1, "queue_id": QID.hex(), "attempt": 1, "holder": "r", "wait": 61}),
    (0x12, {"rid": 1, "queue_id": QID.hex(), "attempt": 1, "index": -1, "lease_token": "t"}),
    (0x12, {"rid": 1, "queue_id": QID.hex(), "attempt": 1, "index": 10_000,
            "lease_token": "t"}),
    (0x13, {"rid": 1, "queue_id": QID.hex(), "attempt": 1, "index": 1, "lease_token": "t",
            "ok": "yes"}),
    (0x93, {"rid": 1, "ready": 0, "leased": 0, "done": 0, "failed": 0, "carried": 0,
            "holders": [["r", 1, 2.0]]}),
    (0x93, {"rid": 1, "ready": 0, "leased": 1, "done": 0, "failed": 0, "carried": 0,
            "holders": [["r", 1]]}),
    (0x94, {"rid": 1, "reason": "because", "message": "", "index": None, "total": None}),
])
def test_bad_fields_are_rejected(op, meta):
    with pytest.raises(FrameRejected) as caught:
        decode_body(_frame(op, meta))
    assert caught.value.code == "bad_message"
