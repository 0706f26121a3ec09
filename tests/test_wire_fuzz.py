"""Property tests of the wire codec: round trips, and garbage that must only ever be rejected."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from github_p2p.errors import LocalProtocolError
from github_p2p.p2p.meta import message_to_meta
from github_p2p.p2p.wire import (
    ERROR_CODES,
    MAX_LEASE_WAIT,
    MESSAGE_TYPES,
    Delete,
    Entry,
    Error,
    FrameDecoder,
    FrameRejected,
    Get,
    Hello,
    Lease,
    LeaseOutcome,
    LeaseReply,
    Message,
    NotFound,
    Ok,
    PeersQuery,
    PeersReply,
    Put,
    Release,
    StatsQuery,
    StatsReply,
    WireLimits,
    decode_body,
    encode,
)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = WireLimits(max_frame=8192, max_meta=4096, max_envelope=2048)

# --- message strategies ------------------------------------------------------------------------

rids = st.integers(0, 2**32 - 1)
ids = st.binary(min_size=32, max_size=32)
# What str.isprintable() accepts: no control, format, surrogate, private, unassigned or
# separator characters except the plain space.
_printable = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")
) | st.just(" ")


def texts(min_size: int = 1, max_size: int = 256) -> st.SearchStrategy[str]:
    return st.text(_printable, min_size=min_size, max_size=max_size)


durations = st.floats(0, 1e9, allow_nan=False)
envelopes = st.binary(min_size=1, max_size=600)


def records(max_text: int) -> st.SearchStrategy[dict[str, Any]]:
    scalars = (
        st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | texts(0, max_text)
    )
    return st.dictionaries(texts(1, max_text), scalars, max_size=6)


@st.composite
def puts(draw: st.DrawFn, tokens: st.SearchStrategy[str]) -> Put:
    fresh = draw(durations)
    keep = fresh + draw(durations)
    token = draw(st.none() | tokens)
    return Put(draw(rids), draw(ids), draw(envelopes), fresh, keep, token, draw(st.none() | ids))


@st.composite
def lease_replies(draw: st.DrawFn, tokens: st.SearchStrategy[str]) -> LeaseReply:
    outcome: LeaseOutcome = draw(st.sampled_from(["hit", "granted", "filled", "timeout"]))
    needs_envelope = outcome in ("hit", "filled")
    envelope = draw(envelopes if needs_envelope else st.just(b"") | envelopes)
    fresh = draw(st.booleans()) if envelope else False
    token = draw(tokens) if outcome == "granted" else None
    return LeaseReply(draw(rids), draw(ids), outcome, envelope, fresh, token, draw(durations))


#: Compact JWTs as far as the wire checks them (three base64url parts).
jwts = st.from_regex(r"[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{0,40}",
                     fullmatch=True)


def message_strategy(max_text: int = 256) -> st.SearchStrategy[Message]:
    """Every kind of valid message; a small ``max_text`` makes cheaper, shorter frames."""
    text = texts(max_size=max_text)
    return st.one_of(
        st.builds(Hello, rids, st.sampled_from(["runner", "bootstrap"]), text, text, text,
                  st.none() | jwts),
        st.builds(Get, rids, ids),
        puts(text),
        st.builds(Delete, rids, ids),
        st.builds(Lease, rids, ids, st.floats(0, MAX_LEASE_WAIT)),
        st.builds(Release, rids, ids, text),
        st.builds(StatsQuery, rids),
        st.builds(PeersQuery, rids),
        st.builds(Ok, rids),
        st.builds(Entry, rids, ids, envelopes, st.booleans(), durations),
        st.builds(NotFound, rids, ids),
        lease_replies(text),
        st.builds(StatsReply, rids, records(max_text)),
        st.builds(PeersReply, rids, st.lists(records(max_text), max_size=4)),
        st.builds(
            Error,
            st.none() | rids,
            st.sampled_from(sorted(ERROR_CODES)),
            texts(0, 4 * max_text),
        ),
    )


messages = message_strategy()
# For the fuzz tests: short strings keep every frame within SMALL.
small_messages = message_strategy(max_text=8)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=4,
)


# --- helpers -----------------------------------------------------------------------------------


def feed(data: bytes, cuts: list[int], limits: WireLimits, *, eof: bool) -> list[Message]:
    """Feed ``data`` split at ``cuts``; only FrameRejected may escape, and it must be sticky."""
    decoder = FrameDecoder(limits)
    out: list[Message] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    if eof:
        chunks.append(b"")  # the EOF signal
    for chunk in chunks:
        decoder.receive_data(chunk)
        while True:
            try:
                message = decoder.next_message()
            except FrameRejected as exc:
                if exc.fatal:
                    try:
                        decoder.next_message()
                    except FrameRejected as again:
                        assert again.fatal and again.code == exc.code
                    else:
                        raise AssertionError("a fatal error did not stick") from exc
                    return out
                continue
            if message is None:
                break
            out.append(message)
    return out


def assert_canonical(message: Message, limits: WireLimits) -> None:
    """Anything the decoder accepts is a valid message that survives its own round trip."""
    try:
        frame = encode(message, limits)
    except LocalProtocolError as exc:  # accepted meta may be re-encoded a little longer
        assert "max_" in str(exc)
        return
    decoder = FrameDecoder(limits)
    decoder.receive_data(frame)
    assert decoder.next_message() == message


# --- properties --------------------------------------------------------------------------------


@settings(FUZZ, max_examples=250)
@given(st.lists(messages, min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=8))
def test_round_trip_across_arbitrary_chunking(batch: list[Message], cuts: list[int]) -> None:
    stream = b"".join(encode(m) for m in batch)
    assert feed(stream, cuts, WireLimits(), eof=True) == batch


@settings(FUZZ, max_examples=900)
@given(
    st.lists(st.binary(max_size=300), min_size=10, max_size=30),
    st.lists(st.integers(0, 400), max_size=4),
    st.booleans(),
)
def test_arbitrary_bytes_are_only_ever_rejected(
    inputs: list[bytes], cuts: list[int], eof: bool
) -> None:
    for data in inputs:
        for message in feed(data, cuts, SMALL, eof=eof):
            assert_canonical(message, SMALL)


_OPS = sorted({0, 1, 2, 0x7F, 0x80, 0xFE, *MESSAGE_TYPES})


@settings(FUZZ, max_examples=700)
@given(
    st.lists(st.tuples(st.sampled_from(_OPS), st.binary(max_size=200)), min_size=10, max_size=30)
)
def test_arbitrary_bodies_behind_a_valid_header(bodies: list[tuple[int, bytes]]) -> None:
    for op, rest in bodies:
        try:
            message = decode_body(bytes((1, op)) + rest, SMALL)
        except FrameRejected as exc:
            assert not exc.fatal
        else:
            assert_canonical(message, SMALL)


# A mutation set is a tape of 4-byte instructions (kind, position high, position low, value):
# one cheap draw per set that still shrinks well.
_MUTATIONS = st.binary(min_size=4, max_size=24)
_KINDS = ("flip", "set", "insert", "delete", "truncate")


def mutate(frame: bytes, tape: bytes) -> bytes:
    data = bytearray(frame)
    for offset in range(0, len(tape) - 3, 4):
        kind = _KINDS[tape[offset] % len(_KINDS)]
        index = (tape[offset + 1] << 8 | tape[offset + 2]) % (len(data) + 1)
        value = tape[offset + 3]
        if kind == "insert":
            data[index:index] = bytes((value,))
        elif index == len(data):
            continue
        elif kind == "flip":
            data[index] ^= 1 << (value % 8)
        elif kind == "set":
            data[index] = value
        elif kind == "delete":
            del data[index : index + 1 + value % 8]
        else:
            del data[index:]
    return bytes(data)


@settings(FUZZ, max_examples=400)
@given(
    st.lists(small_messages, min_size=1, max_size=3),
    st.lists(_MUTATIONS, min_size=4, max_size=12),
    st.booleans(),
)
def test_mutated_valid_frames_are_only_ever_rejected(
    batch: list[Message], tapes: list[bytes], eof: bool
) -> None:
    stream = b"".join(encode(m, SMALL) for m in batch)
    for tape in tapes:
        for message in feed(mutate(stream, tape), [], SMALL, eof=eof):
            assert_canonical(message, SMALL)


@settings(FUZZ, max_examples=400)
@given(small_messages, st.data())
def test_meta_with_a_field_changed_keeps_the_rid(message: Message, data: st.DataObject) -> None:
    """A changed field is taken exactly as sent or refused, and a refusal names the request."""
    meta, payload = message_to_meta(message)
    key = data.draw(st.sampled_from([*sorted(set(meta) - {"rid"}), "extra"]), label="key")
    deleted = data.draw(st.booleans(), label="delete") and key in meta
    if deleted:
        del meta[key]
    else:
        meta[key] = data.draw(json_values, label="value")
    raw = json.dumps(meta).encode()
    body = bytes((1, message.OP)) + _varint(len(raw)) + raw + payload
    try:
        decoded = decode_body(body)
    except FrameRejected as exc:
        assert (exc.code, exc.rid, exc.fatal) == ("bad_message", message.rid, False)
        return
    assert_canonical(decoded, WireLimits())
    if key == "extra":
        assert decoded == message
    elif deleted:  # only a field that may be null may be left out
        assert key in ("lease_token", "tag", "limits", "token") and getattr(decoded, key) is None
    else:
        assert message_to_meta(decoded)[0][key] == meta[key]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
