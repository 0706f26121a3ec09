"""The peer registry in a directory: one JSON file per node, for development and for
self-hosted runners that share a disk.

Files hold the same sealed record as issue comments (:func:`~.record.file_document`), named
``<tag>.json`` after the peer's marker. Writes are atomic (a temporary file in the same
directory, then ``os.replace``), so readers never see half a record. A file's modification time
is when it was posted (the writer stamps it with its clock), for the readers' cap on a record's
lifetime (see :mod:`.listing`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from github_p2p.core.keys import FleetKeys
from github_p2p.errors import ConfigError
from github_p2p.registry.interface import RegistryCounters
from github_p2p.registry.listing import DEFAULT_MAX_AGE, Document, Listing, classify
from github_p2p.registry.record import (
    MAX_DOCUMENT,
    RegistryRecord,
    file_document,
    parse_file,
    peer_tag,
    seal_record,
)

__all__ = ["FileRegistry"]

log = logging.getLogger(__name__)

_SUFFIX = ".json"


class FileRegistry:
    """A :class:`~github_p2p.registry.interface.Registry` on a directory."""

    def __init__(
        self,
        directory: str | Path,
        keys: FleetKeys,
        *,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
        max_files: int = 10_000,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.directory = Path(directory)
        self.counters = RegistryCounters()
        self._keys = keys
        self._clock = clock
        self._random = random
        self._max_files = max_files
        self._max_age = max_age
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the registry directory {self.directory}: "
                              f"{exc.strerror}") from exc

    def _path(self, peer_id: str) -> Path:
        return self.directory / (peer_tag(self._keys, peer_id) + _SUFFIX)

    def _read(self, name: str) -> Document:
        try:
            with (self.directory / name).open("rb") as handle:
                posted = os.fstat(handle.fileno()).st_mtime
                data = handle.read(MAX_DOCUMENT + 1)
        except OSError:
            return Document(name, "")  # vanished or unreadable: classified as malformed
        return Document(name, data.decode("utf-8", "replace"), posted)

    def scan(self, now: float) -> Listing:
        """Read every ``*.json`` file of the directory and classify it."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.directory)
                           if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."))
        except OSError as exc:
            raise ConfigError(f"cannot read the registry directory {self.directory}: "
                              f"{exc.strerror}") from exc
        if len(names) > self._max_files:
            log.warning("registry directory holds %d files; reading the first %d",
                        len(names), self._max_files)
            names = names[: self._max_files]
        self.counters.add("requests", len(names))
        documents = [self._read(name) for name in names]
        listing = classify(self._keys, documents, now, parse_file, self._max_age)
        self.counters.observe(listing)
        return listing

    def list_live(self, now: float) -> tuple[RegistryRecord, ...]:
        """The live records, one per peer."""
        return self.scan(now).live

    def publish(self, record: RegistryRecord) -> None:
        """Write this peer's file atomically (replacing the previous one)."""
        with self._lock:
            self._write(record)
            self.counters.add("published")

    def withdraw(self, withdrawal: RegistryRecord) -> int:
        """Replace this peer's file with its withdrawal."""
        with self._lock:
            self._write(withdrawal)
            self.counters.add("withdrawn")
            return 1

    def _write(self, record: RegistryRecord) -> None:
        text = file_document(seal_record(self._keys, record, random=self._random))
        target = self._path(record.peer_id)
        temporary = target.with_name(f".{target.stem}.{os.getpid()}.{self._random(4).hex()}.tmp")
        now = self._clock()
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.utime(temporary, (now, now))  # posted now, by our clock
            os.replace(temporary, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise ConfigError(f"cannot write to the registry directory {self.directory}: "
                              f"{exc.strerror}") from exc
        self.counters.add("requests")

    def _unlink(self, path: Path) -> bool:
        self.counters.add("requests")
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.counters.add("errors")
            log.warning("cannot delete registry file %s: %s", path.name, exc.strerror)
            return False
        return True

    def prune(self, now: float, *, listing: Listing | None = None,
              limit: int | None = None) -> int:
        """Delete files whose record has expired (at most ``limit`` per call)."""
        listing = listing if listing is not None else self.scan(now)
        expired = listing.expired if limit is None else listing.expired[:max(limit, 0)]
        with self._lock:
            pruned = sum(self._unlink(self.directory / item.locator) for item in expired)
        self.counters.add("pruned", pruned)
        return pruned

    def close(self) -> None:
        """Nothing to release."""
