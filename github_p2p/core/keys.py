"""Fleet key derivation (pure: no environment, no clock).

A fleet shares one secret. PBKDF2-HMAC-SHA256 with a fixed, versioned salt and a high
iteration count stretches it once into a master key; HKDF-SHA256 then expands the master into
independent keys (one-way, so holding one derived key reveals neither the master nor the others):

* the **sealing keys** (``FleetKeys``): a 32-byte AES-256-GCM key and a 32-byte HMAC key, bound to
  the cache *scope* (usually ``owner/repo``) so two scopes sharing a secret still cannot read or
  address each other's entries;
* the **network key** (``derive_network_key``): the libp2p private-network pre-shared key. A
  bootstrap node can be given only this key (``GITHUB_P2P_NETWORK_KEY``) and never the sealing
  keys: the hub stores sealed entries it cannot open.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from github_p2p.errors import ConfigError

__all__ = [
    "DEFAULT_ITERATIONS",
    "KEY_VERSION",
    "FleetKeys",
    "derive_fleet_keys",
    "derive_master_key",
    "derive_network_key",
    "entry_id",
    "fleet_keys_from_master",
    "network_key_from_master",
    "registry_keys",
]

#: Bumped whenever the derivation changes; part of every salt, so old and new never mix.
KEY_VERSION = 1
#: OWASP's 2023 figure for PBKDF2-HMAC-SHA256; derivation happens once per process.
DEFAULT_ITERATIONS = 600_000
_MIN_SECRET_LENGTH = 8


def _pbkdf2(secret: str, salt: bytes, length: int, iterations: int) -> bytes:
    if len(secret) < _MIN_SECRET_LENGTH:
        raise ConfigError(
            f"the fleet secret is too short (at least {_MIN_SECRET_LENGTH} characters)"
        )
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=salt, iterations=iterations)
    return kdf.derive(secret.encode("utf-8"))


@dataclass(frozen=True, repr=False)
class FleetKeys:
    """Keys that seal, open and address the entries of one scope."""

    aead_key: bytes
    mac_key: bytes
    scope: str
    #: Public fingerprint of the key pair, written into envelopes to tell "foreign key" apart
    #: from "tampered". It reveals nothing about the keys (HMAC output of a constant).
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.aead_key) != 32 or len(self.mac_key) != 32:
            raise ConfigError("fleet keys must be 32 bytes each")
        fingerprint = hmac.new(self.mac_key, b"github-p2p key-id", hashlib.sha256).digest()[:4]
        object.__setattr__(self, "key_id", fingerprint)

    def __repr__(self) -> str:  # never print key material
        return f"FleetKeys(scope={self.scope!r}, key_id={self.key_id.hex()})"


def derive_master_key(secret: str, *, iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """Stretch the fleet ``secret`` (the slow step: do it once per process)."""
    return _pbkdf2(secret, f"github-p2p/v{KEY_VERSION}/master".encode(), 32, iterations)


def _expand(master: bytes, info: str, length: int) -> bytes:
    if len(master) != 32:
        raise ConfigError("the master key must be 32 bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=f"github-p2p/v{KEY_VERSION}/{info}".encode())
    return hkdf.derive(master)


def fleet_keys_from_master(master: bytes, scope: str) -> FleetKeys:
    """The sealing keys of ``scope``: scopes sharing a secret cannot read each other."""
    material = _expand(master, f"seal/{scope}", 64)
    return FleetKeys(aead_key=material[:32], mac_key=material[32:], scope=scope)


def network_key_from_master(master: bytes) -> bytes:
    """The 32-byte libp2p private-network key (PSK) of the fleet."""
    return _expand(master, "network", 32)


def registry_keys(network_key: bytes) -> FleetKeys:
    """The keys that seal and address peer-registry records, from the network key (so a blind
    hub, which holds only that, can take part in the registry)."""
    if len(network_key) != 32:
        raise ConfigError("the network key must be 32 bytes")
    material = _expand(network_key, "registry", 64)
    return FleetKeys(aead_key=material[:32], mac_key=material[32:], scope="registry")


def derive_fleet_keys(
    secret: str, scope: str, *, iterations: int = DEFAULT_ITERATIONS
) -> FleetKeys:
    """Derive the sealing keys of ``scope`` from the fleet ``secret``."""
    return fleet_keys_from_master(derive_master_key(secret, iterations=iterations), scope)


def derive_network_key(secret: str, *, iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """Derive the libp2p private-network key from the fleet ``secret``."""
    return network_key_from_master(derive_master_key(secret, iterations=iterations))


def entry_id(keys: FleetKeys, cache_key: str) -> bytes:
    """The 32-byte id of a cache key on the wire and at the hub: HMAC-SHA256(mac key, key).

    The hub sees only this id, never the URL behind it.
    """
    return hmac.new(keys.mac_key, cache_key.encode("utf-8"), hashlib.sha256).digest()
