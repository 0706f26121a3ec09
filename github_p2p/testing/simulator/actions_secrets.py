"""Actions secrets: a real Curve25519 key pair, sealed-box decryption, and the stored values."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

__all__ = ["SecretVault", "StoredSecret", "normalise_secret_name"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StoredSecret:
    """A secret as the simulator keeps it; GitHub only ever shows the metadata."""

    name: str
    created_at: int
    updated_at: int
    plaintext: bytes


def normalise_secret_name(name: str) -> str | None:
    """GitHub's stored form of a secret name (upper case), or ``None`` when it is not allowed."""
    if not _NAME_RE.match(name) or name.upper().startswith("GITHUB_"):
        return None
    return name.upper()


class SecretVault:
    """Secrets of every repository, encrypted to one key pair per simulator like GitHub's."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._box = SealedBox(private_key)
        public = bytes(private_key.public_key)
        self.public_key: str = base64.b64encode(public).decode()
        """The public key, base64, as ``GET .../actions/secrets/public-key`` gives it."""
        self.key_id: str = str(int.from_bytes(hashlib.sha256(public).digest()[:8], "big"))
        """The id callers must send back with a value sealed to :attr:`public_key`."""
        self._secrets: dict[tuple[str, str], StoredSecret] = {}

    def open_sealed(self, encrypted_value: str) -> bytes | None:
        """The plaintext of a base64 sealed box, or ``None`` when it does not open."""
        try:
            sealed = base64.b64decode(encrypted_value, validate=True)
            plaintext: bytes = self._box.decrypt(sealed)
        except (binascii.Error, ValueError, CryptoError):
            return None
        return plaintext

    def store(self, repo: str, name: str, plaintext: bytes, now: int) -> bool:
        """Create or replace a secret; returns whether it was created."""
        previous = self._secrets.get((repo, name))
        created_at = now if previous is None else previous.created_at
        updated_at = now if previous is None else max(now, previous.updated_at + 1)
        self._secrets[(repo, name)] = StoredSecret(name, created_at, updated_at, plaintext)
        return previous is None

    def get(self, repo: str, name: str) -> StoredSecret | None:
        """A secret of ``repo`` by its stored name."""
        return self._secrets.get((repo, name))

    def names(self, repo: str) -> list[StoredSecret]:
        """Every secret of ``repo``, sorted by name like GitHub's list."""
        return sorted((s for (r, _), s in self._secrets.items() if r == repo), key=lambda s: s.name)

    def delete(self, repo: str, name: str) -> bool:
        """Remove a secret; returns whether it existed."""
        return self._secrets.pop((repo, name), None) is not None
