"""Unit tests of key derivation, entries and sealed envelopes (the pure parts)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from github_p2p.core.entry import CacheEntry, decode_entry, encode_entry
from github_p2p.core.keys import derive_fleet_keys, derive_network_key, entry_id
from github_p2p.core.sealing import open_entry, seal_entry
from github_p2p.errors import (
    ConfigError,
    DigestMismatchError,
    EnvelopeFormatError,
    ForeignKeyError,
    IntegrityError,
    TamperedEntryError,
    WrongEntryIdError,
)

FAST = 1000  # iterations: the real count is slow on purpose, and the tests need speed


@pytest.fixture(scope="module")
def keys():
    return derive_fleet_keys("correct horse battery", "octo/hello", iterations=FAST)


def make_entry(body: bytes = b'{"id": 1}') -> CacheEntry:
    return CacheEntry(200, (("content-type", "application/json"),), body, 100.0, 160.0,
                      etag='W/"abc"', etag_owner="f00d", last_modified="Mon, 01 Jan 2024")


def test_derivation_is_deterministic_and_scoped():
    a = derive_fleet_keys("correct horse battery", "octo/hello", iterations=FAST)
    b = derive_fleet_keys("correct horse battery", "octo/hello", iterations=FAST)
    other_scope = derive_fleet_keys("correct horse battery", "octo/world", iterations=FAST)
    other_secret = derive_fleet_keys("correct horse staple", "octo/hello", iterations=FAST)
    assert a == b
    assert a.aead_key != other_scope.aead_key and a.mac_key != other_scope.mac_key
    assert a.aead_key != other_secret.aead_key
    assert a.aead_key != a.mac_key


def test_network_key_is_independent_of_sealing_keys():
    keys = derive_fleet_keys("correct horse battery", "", iterations=FAST)
    net = derive_network_key("correct horse battery", iterations=FAST)
    assert len(net) == 32
    assert net not in (keys.aead_key, keys.mac_key)


def test_short_secret_is_a_config_error():
    with pytest.raises(ConfigError):
        derive_fleet_keys("short", "x", iterations=FAST)


def test_repr_hides_key_material(keys):
    text = repr(keys)
    assert keys.aead_key.hex() not in text and keys.mac_key.hex() not in text


def test_entry_id_is_keyed(keys):
    other = derive_fleet_keys("another secret!", "octo/hello", iterations=FAST)
    assert entry_id(keys, "k") != entry_id(other, "k")
    assert entry_id(keys, "k") != entry_id(keys, "k2")
    assert len(entry_id(keys, "k")) == 32


def test_entry_round_trip():
    entry = make_entry()
    assert decode_entry(encode_entry(entry)) == entry


def test_entry_with_wrong_body_digest_is_refused():
    raw = bytearray(encode_entry(make_entry()))
    raw[-1] ^= 1
    with pytest.raises(DigestMismatchError):
        decode_entry(bytes(raw))


@pytest.mark.parametrize("raw", [b"", b"\x00\x00", b"\x00\x00\x00\x05{}", b"\xff\xff\xff\xff{}"])
def test_malformed_entry_bytes(raw):
    with pytest.raises(EnvelopeFormatError):
        decode_entry(raw)


def test_seal_round_trip(keys):
    ident = entry_id(keys, "key")
    entry = make_entry()
    assert open_entry(keys, ident, seal_entry(keys, ident, entry)) == entry


def test_nonces_are_fresh(keys):
    ident = entry_id(keys, "key")
    assert seal_entry(keys, ident, make_entry()) != seal_entry(keys, ident, make_entry())


def test_foreign_key_is_named(keys):
    other = derive_fleet_keys("another secret!", "octo/hello", iterations=FAST)
    ident = entry_id(keys, "key")
    with pytest.raises(ForeignKeyError):
        open_entry(other, ident, seal_entry(keys, ident, make_entry()))


def test_replay_under_another_id_is_named(keys):
    envelope = seal_entry(keys, entry_id(keys, "a"), make_entry())
    with pytest.raises(WrongEntryIdError):
        open_entry(keys, entry_id(keys, "b"), envelope)


def test_same_id_prefix_replay_still_fails_authentication(keys):
    # Even an id that shares the clear 8-byte hint is caught by the AEAD associated data.
    ident = entry_id(keys, "a")
    forged_id = ident[:8] + bytes(24)
    with pytest.raises(TamperedEntryError):
        open_entry(keys, forged_id, seal_entry(keys, ident, make_entry()))


def test_truncated_and_bad_version(keys):
    ident = entry_id(keys, "a")
    envelope = seal_entry(keys, ident, make_entry())
    with pytest.raises(EnvelopeFormatError):
        open_entry(keys, ident, envelope[:20])
    with pytest.raises(EnvelopeFormatError):
        open_entry(keys, ident, b"\x02" + envelope[1:])
    with pytest.raises(TamperedEntryError):
        open_entry(keys, ident, envelope[:-1])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bit_flip_is_rejected(keys, data):
    ident = entry_id(keys, "flip")
    envelope = bytearray(seal_entry(keys, ident, make_entry(b"x" * 64)))
    bit = data.draw(st.integers(0, len(envelope) * 8 - 1))
    envelope[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(IntegrityError):
        open_entry(keys, ident, bytes(envelope))


@settings(max_examples=100)
@given(body=st.binary(max_size=2048), status=st.sampled_from([200, 404, 301]),
       etag=st.none() | st.text(max_size=40))
def test_entry_round_trip_property(body, status, etag):
    entry = dataclasses.replace(make_entry(body), status=status, etag=etag, digest=b"")
    entry = CacheEntry(**{f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)
                          if f.name != "digest"})
    assert decode_entry(encode_entry(entry)) == entry


def test_master_split_matches_one_shot_helpers():
    from github_p2p.core.keys import (
        derive_master_key,
        fleet_keys_from_master,
        network_key_from_master,
    )

    master = derive_master_key("correct horse battery", iterations=FAST)
    assert fleet_keys_from_master(master, "s") == derive_fleet_keys(
        "correct horse battery", "s", iterations=FAST)
    assert network_key_from_master(master) == derive_network_key(
        "correct horse battery", iterations=FAST)
    assert network_key_from_master(master) != master


def test_one_multihash_package_serves_libp2p_and_us():
    # Two distributions own the "multihash" package; the wrong one breaks libp2p's peer ids.
    import multihash
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    assert callable(multihash.encode) and callable(multihash.digest)
    assert ID.from_pubkey(create_new_key_pair().public_key).to_base58().startswith("12D3KooW")
