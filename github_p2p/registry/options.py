"""From command-line options to a running registry: :class:`RegistryOptions`,
:func:`open_registry`, :func:`node_agent`, and :func:`hubs_to_dial` (what a runner learns)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.core.keys import FleetKeys
from github_p2p.errors import ConfigError
from github_p2p.registry.agent import HeartbeatSettings, RegistryAgent
from github_p2p.registry.files import FileRegistry
from github_p2p.registry.interface import Registry
from github_p2p.registry.issue import DEFAULT_LABEL, DEFAULT_TITLE, IssueLocation, IssueRegistry
from github_p2p.registry.listing import Listing
from github_p2p.registry.record import NodeIdentity, RegistryRecord, registry_keys

__all__ = ["HubRegistrySetup", "RegistryOptions", "hubs_to_dial", "node_agent", "open_registry"]


@dataclass(frozen=True)
class RegistryOptions:
    """Where the registry lives (an issue by number, the issue found by label and title, or a
    directory) and how often nodes beat."""

    issue: int | None = None
    find_issue: bool = False
    directory: Path | None = None
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    label: str = DEFAULT_LABEL
    title: str = DEFAULT_TITLE

    def __post_init__(self) -> None:
        chosen = sum((self.issue is not None, self.find_issue, self.directory is not None))
        if chosen != 1:
            raise ConfigError("choose one registry: an issue number, 'auto', or a directory")

    @classmethod
    def from_cli(cls, issue: str | None, directory: str | Path | None,
                 interval: float | None = None, *, prune: bool = False
                 ) -> RegistryOptions | None:
        """``--registry-issue N|auto``, ``--registry-dir DIR``, ``--registry-interval S``;
        ``None`` when no registry is asked for."""
        issue = (issue or "").strip()
        if not issue and not directory:
            return None
        if issue and directory:
            raise ConfigError("--registry-issue and --registry-dir exclude each other")
        heartbeat = HeartbeatSettings(prune=prune)
        if interval is not None:
            heartbeat = replace(heartbeat, interval=interval)
        if directory:
            return cls(directory=Path(directory), heartbeat=heartbeat)
        if issue.lower() == "auto":
            return cls(find_issue=True, heartbeat=heartbeat)
        if not issue.isdigit() or int(issue) < 1:
            raise ConfigError(f"--registry-issue must be an issue number or 'auto', "
                              f"not {issue!r}")
        return cls(issue=int(issue), heartbeat=heartbeat)

    def describe(self) -> str:
        """Where the registry is, for logs."""
        if self.directory is not None:
            return f"directory {self.directory}"
        return f"issue #{self.issue}" if self.issue is not None else \
            f"the issue titled {self.title!r}"


def open_registry(
    options: RegistryOptions,
    *,
    keys: FleetKeys,
    client: GitHubClient | None,
    repo: str,
    create: bool = True,
    owns_client: bool = False,
    clock: Callable[[], float] = time.time,
) -> Registry:
    """The registry ``options`` name. An issue registry needs ``client`` and ``repo``."""
    max_age = options.heartbeat.max_age
    if options.directory is not None:
        return FileRegistry(options.directory, keys, clock=clock, max_age=max_age)
    if client is None:
        raise ConfigError("the issue registry needs a GitHub client")
    location = IssueLocation(repo, options.issue, options.label, options.title, create=create)
    return IssueRegistry(client, location, keys, clock=clock, owns_client=owns_client,
                         max_age=max_age)


def node_agent(
    options: RegistryOptions,
    *,
    network_key: bytes,
    client: GitHubClient | None,
    repo: str,
    identity: NodeIdentity,
    on_listing: Callable[[Listing], None] | None = None,
    owns_client: bool = False,
) -> RegistryAgent:
    """The heartbeat agent of one node (registry keys come from the network key)."""
    registry = open_registry(options, keys=registry_keys(network_key), client=client,
                             repo=repo, owns_client=owns_client)
    return RegistryAgent(registry, identity, options.heartbeat, on_listing=on_listing)


@dataclass(frozen=True)
class HubRegistrySetup:
    """What a bootstrap node needs to take part in the registry: it has no cache engine of
    its own, so its registry calls go through an in-process client of ``client``."""

    options: RegistryOptions
    client: ClientSettings
    arch: str
    name: str

    def agent(self, network_key: bytes, peer_id: str, multiaddrs: Iterable[str], *,
              started_at: float) -> RegistryAgent:
        """The bootstrap node's agent (it prunes expired records)."""
        options = replace(self.options, heartbeat=replace(self.options.heartbeat, prune=True))
        client = GitHubClient.in_process(self.client) if options.directory is None else None
        identity = NodeIdentity(peer_id, tuple(multiaddrs), "bootstrap", self.arch, self.name,
                                started_at)
        return node_agent(options, network_key=network_key, client=client,
                          repo=self.client.scope, identity=identity, owns_client=True)


def hubs_to_dial(records: Iterable[RegistryRecord], *, known_addrs: Iterable[str],
                 connected_hubs: Iterable[str], own_peer_id: str | None) -> list[str]:
    """Addresses of registry-listed bootstrap nodes worth a new link.

    One address per hub (its first, the announced one), skipped when that address is already
    linked or the hub is already connected through another; a hub whose address changed since
    ``MCP_P2P_BOOTSTRAP_PEERS`` was written is thereby found at its new address.
    """
    known = set(known_addrs)
    connected = set(connected_hubs)
    out: list[str] = []
    for record in records:
        if record.role != "bootstrap" or record.peer_id == own_peer_id \
                or record.peer_id in connected:
            continue
        dialable = [a for a in record.multiaddrs if a.endswith("/p2p/" + record.peer_id)]
        if dialable and dialable[0] not in known:
            out.append(dialable[0])
            known.add(dialable[0])
    return out
