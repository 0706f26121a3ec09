"""Sealed envelopes: what the fleet and the hub see of an entry (pure).

Layout (all fields authenticated)::

    version (1) | key id (4) | id hint (8) | nonce (12) | AES-256-GCM ciphertext + tag (16)

The associated data is the clear header plus the full 32-byte entry id, so an envelope cannot be
replayed under another entry id. The clear header lets a reader say *why* an envelope is refused
(foreign key, wrong id, tampering) without weakening anything: the key id is a fingerprint of
the key and the id hint is a prefix of an id the hub already knows.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from github_p2p.core.cachekey import CacheKey
from github_p2p.core.entry import CacheEntry, decode_entry, encode_entry
from github_p2p.core.keys import FleetKeys, entry_id
from github_p2p.core.lease import LeaseAnswer
from github_p2p.errors import (
    EnvelopeFormatError,
    ForeignKeyError,
    IntegrityError,
    TamperedEntryError,
    WrongEntryIdError,
)

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_ENVELOPE",
    "MAX_PLAINTEXT",
    "FleetSeal",
    "open_entry",
    "open_envelope",
    "seal",
    "seal_entry",
]

ENVELOPE_VERSION = 1
#: Entries above this size are not shared (GitHub's own API responses stay far below it).
MAX_ENVELOPE = 4 * 1024 * 1024
_NONCE = 12
_TAG = 16
_HEADER_LEN = 1 + 4 + 8
_OVERHEAD = _HEADER_LEN + _NONCE + _TAG
#: The largest encoded entry that still fits an envelope.
MAX_PLAINTEXT = MAX_ENVELOPE - _OVERHEAD


def _header(keys: FleetKeys, entry_id: bytes) -> bytes:
    return bytes([ENVELOPE_VERSION]) + keys.key_id + entry_id[:8]


def seal(
    keys: FleetKeys,
    entry_id: bytes,
    plaintext: bytes,
    *,
    random: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``plaintext`` for ``entry_id`` with a fresh random 96-bit nonce."""
    if len(entry_id) != 32:
        raise ValueError("entry ids are 32 bytes")
    header = _header(keys, entry_id)
    nonce = random(_NONCE)
    ciphertext = AESGCM(keys.aead_key).encrypt(nonce, plaintext, header + entry_id)
    envelope = header + nonce + ciphertext
    if len(envelope) > MAX_ENVELOPE:
        raise EnvelopeFormatError(f"entry too large to share ({len(envelope)} bytes)")
    return envelope


def open_envelope(keys: FleetKeys, entry_id: bytes, envelope: bytes) -> bytes:
    """Decrypt an envelope made by :func:`seal` for ``entry_id``.

    Raises a specific :class:`~github_p2p.errors.IntegrityError` subclass when it is truncated
    or of an unknown version, sealed with another key, meant for another id, or tampered with.
    """
    if len(envelope) < _OVERHEAD:
        raise EnvelopeFormatError("envelope is truncated")
    if len(envelope) > MAX_ENVELOPE:
        raise EnvelopeFormatError("envelope is too large")
    if envelope[0] != ENVELOPE_VERSION:
        raise EnvelopeFormatError(f"unknown envelope version {envelope[0]}")
    if envelope[1:5] != keys.key_id:
        raise ForeignKeyError("envelope was sealed with another fleet key")
    if envelope[5:_HEADER_LEN] != entry_id[:8]:
        raise WrongEntryIdError("envelope belongs to another entry id")
    header = envelope[:_HEADER_LEN]
    nonce = envelope[_HEADER_LEN : _HEADER_LEN + _NONCE]
    try:
        return AESGCM(keys.aead_key).decrypt(nonce, envelope[_HEADER_LEN + _NONCE :],
                                             header + entry_id)
    except InvalidTag as exc:
        raise TamperedEntryError("envelope failed authentication") from exc


def seal_entry(keys: FleetKeys, entry_id: bytes, entry: CacheEntry) -> bytes:
    """Encode and seal a cache entry."""
    return seal(keys, entry_id, encode_entry(entry))


def open_entry(keys: FleetKeys, entry_id: bytes, envelope: bytes) -> CacheEntry:
    """Open and decode a sealed entry, verifying the body digest."""
    return decode_entry(open_envelope(keys, entry_id, envelope))


class FleetSeal:
    """The fleet's keys applied to cache keys and entries: ids, tags, sealing, opening.

    Nothing readable leaves a runner: an entry's id on the wire is an HMAC of its cache key,
    its resource tag an HMAC of the resource, its body and headers ciphertext.
    """

    def __init__(self, keys: FleetKeys) -> None:
        self.keys = keys

    def id_of(self, key: CacheKey) -> bytes:
        """The fleet id of a cache key."""
        return entry_id(self.keys, key.text)

    def tag_of(self, resource: str) -> bytes:
        """The fleet id of a resource, used to invalidate all its variants."""
        return entry_id(self.keys, "resource|" + resource)

    def seal(self, key: CacheKey, entry: CacheEntry) -> bytes:
        """The envelope of ``entry`` under ``key``."""
        return seal_entry(self.keys, self.id_of(key), entry)

    def open(self, key: CacheKey, answer: LeaseAnswer[bytes]
             ) -> tuple[LeaseAnswer[CacheEntry], IntegrityError | None]:
        """Open the entry riding on a lease answer; a sealed entry that fails to open or verify
        is dropped from the answer and returned as the error (never served)."""
        entry, error = None, None
        if answer.payload:
            try:
                entry = open_entry(self.keys, self.id_of(key), answer.payload)
            except IntegrityError as exc:
                error = exc
        return LeaseAnswer(answer.outcome, entry, answer.fresh and entry is not None,
                           answer.lease), error
