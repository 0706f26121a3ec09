"""Persistent libp2p identity of a node (the bootstrap hub's stable peer id).

The hub's peer id is part of every runner's ``MCP_P2P_BOOTSTRAP_PEERS`` secret, so it must survive
restarts: the Ed25519 private key is kept in a file, in libp2p's protobuf ``PrivateKey`` encoding
(the same bytes ``libp2p.identity_utils.save_identity`` and ``FileSystemKeyStore`` write, so the
file stays usable with libp2p's own tools).

py-libp2p's ``save_identity`` truncates and rewrites the file in place: a crash or a second process
starting at the same time can leave an empty or half-written key, and the hub comes back with a
different peer id. Here a new key is written to a private temporary file in the same directory and
``os.link``-ed into place, which is atomic and never replaces an existing file: two processes racing
to create the identity both end up with the one that won.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key

from github_p2p.errors import ConfigError

__all__ = ["load_or_create_identity"]

logger = logging.getLogger(__name__)

#: A protobuf-encoded Ed25519 private key is 68 bytes; anything far bigger is not a key file.
_MAX_IDENTITY_FILE_SIZE = 4096


def load_or_create_identity(path: str | os.PathLike[str]) -> KeyPair:
    """Load the Ed25519 identity stored at ``path``, creating it (mode 0600) if it is missing.

    The same file always yields the same key pair, hence the same peer id. Raises
    :class:`~github_p2p.errors.ConfigError` when the file exists but is not a readable Ed25519
    libp2p private key (corrupt, truncated, another key type, a directory, unreadable); the file
    is then left untouched, because replacing it would silently change the hub's peer id.
    """
    target = Path(path).expanduser()
    if target.exists() or target.is_symlink():
        return _load(target)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _create(target)
    except OSError as exc:
        raise ConfigError(f"cannot create the identity file {target}: {exc.strerror}") from exc


def _load(target: Path) -> KeyPair:
    try:
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the identity file {target} is not a regular file")
        if info.st_size > _MAX_IDENTITY_FILE_SIZE:
            raise ConfigError(f"the identity file {target} is too large to be a private key")
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the identity file {target}: {exc.strerror}") from exc
    if info.st_mode & 0o077:
        logger.warning(
            "identity file %s is readable by other users (mode %o); chmod 600 it",
            target,
            stat.S_IMODE(info.st_mode),
        )
    try:
        private_key = deserialize_private_key(data)
        public_key = private_key.get_public_key()
        public_key.serialize()  # a truncated Ed25519 seed fails here, not on first use
    except Exception as exc:  # the decoder raises protobuf, nacl and KeyError types alike
        raise ConfigError(
            f"the identity file {target} is corrupt ({type(exc).__name__}); restore it from a "
            "backup, or delete it to create a new identity (the peer id, and so the bootstrap "
            "peers secret, will change)"
        ) from exc
    if private_key.get_type() is not KeyType.Ed25519:
        raise ConfigError(f"the identity file {target} holds a non-Ed25519 key")
    return KeyPair(private_key, public_key)


def _create(target: Path) -> KeyPair:
    key_pair = create_new_key_pair()
    data = key_pair.private_key.serialize()
    # mkstemp creates the file with O_EXCL and mode 0600 before any byte is written.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp_name, target)
        except FileExistsError:
            # Another process created the identity first: theirs is the one in use.
            return _load(target)
        _fsync_directory(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    logger.info("created a new identity in %s", target)
    return key_pair


def _fsync_directory(directory: Path) -> None:
    # Makes the new directory entry durable; not every filesystem supports it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
