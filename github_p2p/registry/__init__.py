"""The peer registry: where the nodes of a fleet announce their sealed addresses.

* :mod:`.record`: the record, its keys and sealed text forms (pure);
* :mod:`.listing`: one classified read pass (pure);
* :mod:`.issue`, :mod:`.files`: the two registries (GitHub issue comments, a directory);
* :mod:`.agent`: the heartbeat a node runs; :mod:`.options`: wiring from the command line.
"""

from __future__ import annotations

from github_p2p.registry.agent import Heartbeat, HeartbeatSettings, RegistryAgent
from github_p2p.registry.files import FileRegistry
from github_p2p.registry.interface import Registry, RegistryCounters
from github_p2p.registry.issue import IssueLocation, IssueRegistry
from github_p2p.registry.listing import Found, Listing, classify
from github_p2p.registry.options import (
    HubRegistrySetup,
    RegistryOptions,
    hubs_to_dial,
    node_agent,
    open_registry,
)
from github_p2p.registry.record import NodeIdentity, RegistryRecord, SealedRecord, registry_keys

__all__ = [
    "FileRegistry",
    "Found",
    "Heartbeat",
    "HeartbeatSettings",
    "HubRegistrySetup",
    "IssueLocation",
    "IssueRegistry",
    "Listing",
    "NodeIdentity",
    "Registry",
    "RegistryAgent",
    "RegistryCounters",
    "RegistryOptions",
    "RegistryRecord",
    "SealedRecord",
    "classify",
    "hubs_to_dial",
    "node_agent",
    "open_registry",
    "registry_keys",
]
