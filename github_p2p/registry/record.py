"""The registry record and its sealed text forms (pure: no clock, no I/O, no environment).

A node of the fleet announces itself with a :class:`RegistryRecord`. The record is sealed with
the *registry keys*, which are derived from the fleet's network key (so a bootstrap node holding
only ``GITHUB_P2P_NETWORK_KEY`` can take part, yet the registry keys reveal neither the network
key nor the cache-sealing keys). The registry may live on a public issue: everything but an
opaque marker is encrypted, so addresses never appear in plaintext.

Each record is filed under a *tag*, an HMAC of the peer id. The tag is the comment marker (or
the file name) a node finds its own entry by, and the envelope's entry id is derived from it, so
a record copied under another node's marker fails to open (:class:`WrongEntryIdError`).

A record says when it was issued and carries a sequence number that grows with each record of
one run of a node (``started_at``); a node that stops replaces its record with a *withdrawal*
(``withdrawn``, the next number). Readers believe the newest record of each peer and cap its
lifetime themselves (:mod:`.listing`): what the record claims is only an upper bound.

Two text forms carry a sealed record: an issue comment (:func:`comment_body`) and a JSON file
(:func:`file_document`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from github_p2p.core.keys import FleetKeys, entry_id, registry_keys
from github_p2p.core.sealing import open_envelope, seal
from github_p2p.errors import ConfigError, EnvelopeFormatError, WrongEntryIdError

__all__ = [
    "MAX_DOCUMENT",
    "RECORD_FORMAT",
    "ROLES",
    "NodeIdentity",
    "RegistryRecord",
    "SealedRecord",
    "comment_body",
    "file_document",
    "open_record",
    "parse_comment",
    "parse_file",
    "peer_tag",
    "registry_keys",
    "seal_record",
]

#: Version of the record layout inside the envelope (2: issue time, sequence, withdrawal).
RECORD_FORMAT = 2
ROLES = frozenset({"runner", "bootstrap"})
#: A comment or file larger than this is not a record of ours (GitHub allows 65,536 chars).
MAX_DOCUMENT = 16 * 1024
_MAX_ADDRS = 8
_MAX_ADDR = 256
_MAX_PEER_ID = 128
_MAX_NAME = 200
_MAX_ARCH = 64
_TAG_HEX = 32
_MAX_SEQ = 2**53  # exact in a JSON number everywhere

_MARKER = "github-p2p:peer:"
_MARKER_LINE = re.compile(r"^<!-- github-p2p:peer:([0-9a-f]{32}) -->$", re.MULTILINE)
_SEALED_LINE = re.compile(
    rf"^<!-- github-p2p:record:v{RECORD_FORMAT}:([A-Za-z0-9_-]+={{0,2}}) -->$", re.MULTILINE)
_FILE_FORMAT = "github-p2p/registry-record"
_NOTE = ("github-p2p fleet node: a sealed registry record that only the fleet can read. "
         "The node refreshes it while it runs and deletes it when it stops.")


def peer_tag(keys: FleetKeys, peer_id: str) -> str:
    """The marker a peer's record is filed under: an HMAC of its peer id (32 hex chars)."""
    digest = hmac.new(keys.mac_key, b"github-p2p/registry/peer|" + peer_id.encode(),
                      hashlib.sha256).hexdigest()
    return digest[:_TAG_HEX]


def _bounded_text(name: str, value: Any, limit: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > limit or (not value and not allow_empty):
        raise ConfigError(f"registry record {name} must be a string of 1..{limit} characters")
    if any(ch in value for ch in "\r\n\x00"):
        raise ConfigError(f"registry record {name} must be a single line")
    return value


@dataclass(frozen=True)
class RegistryRecord:
    """One node as the registry knows it; bounds are checked on construction.

    ``issued_at`` (when it was sealed) and ``seq`` order the records of one run of a node;
    ``withdrawn`` marks the record a node leaves when it stops.
    """

    peer_id: str
    multiaddrs: tuple[str, ...]
    role: str
    arch: str
    runner_name: str
    started_at: float
    issued_at: float
    expires_at: float
    seq: int = 0
    withdrawn: bool = False

    def __post_init__(self) -> None:
        _bounded_text("peer_id", self.peer_id, _MAX_PEER_ID)
        if not isinstance(self.multiaddrs, tuple) or len(self.multiaddrs) > _MAX_ADDRS:
            raise ConfigError(f"a registry record holds at most {_MAX_ADDRS} multiaddrs")
        for addr in self.multiaddrs:
            _bounded_text("multiaddr", addr, _MAX_ADDR)
        if self.role not in ROLES:
            raise ConfigError(f"registry record role must be one of {sorted(ROLES)}")
        _bounded_text("arch", self.arch, _MAX_ARCH, allow_empty=True)
        _bounded_text("runner_name", self.runner_name, _MAX_NAME, allow_empty=True)
        for name in ("started_at", "issued_at", "expires_at"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ConfigError(f"registry record {name} must be a finite number")
        if not self.started_at <= self.issued_at <= self.expires_at:
            raise ConfigError("a registry record is issued after its node started and "
                              "expires after it is issued")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) \
                or not 0 <= self.seq <= _MAX_SEQ:
            raise ConfigError(f"registry record seq must be an integer in 0..{_MAX_SEQ}")
        if not isinstance(self.withdrawn, bool):
            raise ConfigError("registry record withdrawn must be a boolean")

    @property
    def order(self) -> tuple[float, int, float]:
        """Newer records of a peer sort later: a later run, then a later record of the run."""
        return (self.started_at, self.seq, self.issued_at)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON (what ``github-p2p registry list`` prints)."""
        return {"peer_id": self.peer_id, "multiaddrs": list(self.multiaddrs),
                "role": self.role, "arch": self.arch, "runner_name": self.runner_name,
                "started_at": self.started_at, "issued_at": self.issued_at,
                "expires_at": self.expires_at, "seq": self.seq, "withdrawn": self.withdrawn}

    @classmethod
    def from_json(cls, data: Any) -> RegistryRecord:
        """Rebuild a record; anything out of shape is an :class:`EnvelopeFormatError`."""
        if not isinstance(data, Mapping):
            raise EnvelopeFormatError("registry record is not an object")
        try:
            addrs = data["multiaddrs"]
            if not isinstance(addrs, list):
                raise ConfigError("multiaddrs must be a list")
            return cls(peer_id=data["peer_id"], multiaddrs=tuple(addrs), role=data["role"],
                       arch=data["arch"], runner_name=data["runner_name"],
                       started_at=data["started_at"], issued_at=data["issued_at"],
                       expires_at=data["expires_at"], seq=data["seq"],
                       withdrawn=data["withdrawn"])
        except (KeyError, ConfigError) as exc:
            raise EnvelopeFormatError(f"registry record is malformed: {exc}") from exc


@dataclass(frozen=True)
class NodeIdentity:
    """What a node says about itself in every heartbeat; :meth:`record` dates it."""

    peer_id: str
    multiaddrs: tuple[str, ...]
    role: str
    arch: str
    runner_name: str
    started_at: float

    def record(self, issued_at: float, expires_at: float, seq: int) -> RegistryRecord:
        """This node's ``seq``-th record of its run, issued now and valid until
        ``expires_at``."""
        return RegistryRecord(self.peer_id, self.multiaddrs[:_MAX_ADDRS], self.role,
                              self.arch[:_MAX_ARCH], self.runner_name[:_MAX_NAME],
                              self.started_at, issued_at, expires_at, seq)

    def withdrawal(self, issued_at: float, expires_at: float, seq: int) -> RegistryRecord:
        """The record this node leaves when it stops: no addresses, and newer than every
        record it issued (``seq`` must be higher), so none of them is believed again."""
        return RegistryRecord(self.peer_id, (), self.role, self.arch[:_MAX_ARCH], "",
                              self.started_at, issued_at, expires_at, seq, withdrawn=True)


@dataclass(frozen=True)
class SealedRecord:
    """A record as stored: the tag it is filed under and its envelope."""

    tag: str
    envelope: bytes


def _entry_id(keys: FleetKeys, tag: str) -> bytes:
    return entry_id(keys, "registry-record|" + tag)


def seal_record(keys: FleetKeys, record: RegistryRecord, *,
                random: Callable[[int], bytes] = os.urandom) -> SealedRecord:
    """Seal ``record`` under its peer's tag."""
    tag = peer_tag(keys, record.peer_id)
    payload = json.dumps({"v": RECORD_FORMAT, **record.to_json()},
                         separators=(",", ":")).encode()
    return SealedRecord(tag, seal(keys, _entry_id(keys, tag), payload, random=random))


def open_record(keys: FleetKeys, sealed: SealedRecord) -> RegistryRecord:
    """Open a sealed record.

    Raises :class:`ForeignKeyError`, :class:`TamperedEntryError` or :class:`WrongEntryIdError`
    for what someone without the fleet key made or changed, :class:`EnvelopeFormatError` for
    anything out of shape.
    """
    plaintext = open_envelope(keys, _entry_id(keys, sealed.tag), sealed.envelope)
    try:
        data = json.loads(plaintext)
    except ValueError as exc:
        raise EnvelopeFormatError("registry record is not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != RECORD_FORMAT:
        raise EnvelopeFormatError("registry record has an unknown format version")
    record = RegistryRecord.from_json(data)
    if peer_tag(keys, record.peer_id) != sealed.tag:
        raise WrongEntryIdError("registry record is filed under another peer's marker")
    return record


def _b64(envelope: bytes) -> str:
    return base64.urlsafe_b64encode(envelope).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeFormatError("sealed record is not valid base64") from exc


def comment_body(sealed: SealedRecord) -> str:
    """The issue comment that carries ``sealed``: two hidden lines and a note for humans."""
    return (f"<!-- {_MARKER}{sealed.tag} -->\n"
            f"<!-- github-p2p:record:v{RECORD_FORMAT}:{_b64(sealed.envelope)} -->\n"
            f"{_NOTE}\n")


def parse_comment(body: str) -> SealedRecord | None:
    """The sealed record in a comment; ``None`` when the comment does not claim to hold one.

    A comment with our marker but no well-formed record raises :class:`EnvelopeFormatError`.
    """
    if _MARKER not in body:
        return None
    if len(body) > MAX_DOCUMENT:
        raise EnvelopeFormatError("registry comment is too large")
    markers = _MARKER_LINE.findall(body)
    sealed = _SEALED_LINE.findall(body)
    if len(markers) != 1 or len(sealed) != 1:
        raise EnvelopeFormatError("registry comment does not hold exactly one sealed record")
    return SealedRecord(markers[0], _unb64(sealed[0]))


def file_document(sealed: SealedRecord) -> str:
    """The JSON file that carries ``sealed`` in a file registry."""
    return json.dumps({"format": _FILE_FORMAT, "version": RECORD_FORMAT, "tag": sealed.tag,
                       "sealed": _b64(sealed.envelope)}, indent=2) + "\n"


def parse_file(text: str) -> SealedRecord:
    """The sealed record in a registry file; :class:`EnvelopeFormatError` when malformed."""
    if len(text) > MAX_DOCUMENT:
        raise EnvelopeFormatError("registry file is too large")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EnvelopeFormatError("registry file is not JSON") from exc
    if not isinstance(data, dict) or data.get("format") != _FILE_FORMAT \
            or data.get("version") != RECORD_FORMAT:
        raise EnvelopeFormatError("registry file has an unknown format")
    tag, payload = data.get("tag"), data.get("sealed")
    if not isinstance(tag, str) or not re.fullmatch(r"[0-9a-f]{32}", tag) \
            or not isinstance(payload, str):
        raise EnvelopeFormatError("registry file lacks its tag or sealed record")
    return SealedRecord(tag, _unb64(payload))
