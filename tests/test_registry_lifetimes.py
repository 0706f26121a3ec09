"""How long a registry record lives, whatever it claims (issue 12, finding 5).

A record opens only with the fleet's registry key, but two things about it are not the
writer's to decide alone:

* its lifetime: readers cap it at a few heartbeat periods after the registry says it was
  posted (the comment's ``updated_at``, the file's time) and after the record says it was
  issued, so a key holder's record "valid for 10 years" dies unless it is re-posted, and a
  record dated in the future is refused;
* its withdrawal: a node that stops replaces its record with a sealed withdrawal (same peer id,
  same start, a higher sequence number). A copy of the earlier record posted again by anyone
  (the issue may be public: copying a comment needs no key) is older than the withdrawal and
  stays dead; the same node restarted (a new start time) is live again.

Run against both registries: issue comments on the simulator (whose clock is the test's) and a
directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.registry import (
    FileRegistry,
    HeartbeatSettings,
    IssueLocation,
    IssueRegistry,
    NodeIdentity,
    Registry,
    RegistryAgent,
    RegistryRecord,
    registry_keys,
)
from github_p2p.registry.record import comment_body, file_document, seal_record
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

NOW = 1_800_000_000.0
REPO = "octo/hello"
KEYS = registry_keys(bytes(range(32)))
INTERVAL = 600.0
TEN_YEARS = 10 * 365 * 86400.0


class Clock:
    """One clock for the simulated GitHub, the nodes and the readers."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Backend:
    """A registry (issue or directory) plus raw access, as anyone could write to it."""

    def __init__(self, kind: str, tmp: Path, clock: Clock) -> None:
        self.kind, self.tmp, self.clock = kind, tmp, clock
        self.sim: GitHubSimulator | None = None
        self.made: list[Registry] = []
        if kind == "issue":
            self.sim = GitHubSimulator(SimulatorConfig(rate_limit=100_000), clock=clock).start()

    def registry(self) -> Registry:
        made: Registry
        if self.sim is not None:
            client = GitHubClient.in_process(ClientSettings(
                api_url=self.sim.url, token="ghp_registrynode", scope=REPO))
            made = IssueRegistry(client, IssueLocation(REPO, 1), KEYS, clock=self.clock,
                                 owns_client=True)
        else:
            made = FileRegistry(self.tmp / "registry", KEYS, clock=self.clock)
        self.made.append(made)
        return made

    def texts(self) -> list[str]:
        """Every entry's raw text, as a bystander reads it."""
        if self.sim is not None:
            resp = requests.get(f"{self.sim.url}/repos/{REPO}/issues/1/comments", timeout=10)
            return [comment["body"] for comment in resp.json()]
        return [p.read_text() for p in sorted((self.tmp / "registry").glob("*.json"))]

    def post(self, text: str) -> None:
        """Post ``text`` as a new entry, now, as someone without any key."""
        if self.sim is not None:
            resp = requests.post(f"{self.sim.url}/repos/{REPO}/issues/1/comments",
                                 json={"body": text}, timeout=10,
                                 headers={"Authorization": "Bearer ghp_bystander"})
            assert resp.status_code == 201
            return
        directory = self.tmp / "registry"
        directory.mkdir(exist_ok=True)
        target = directory / f"copy-{len(list(directory.iterdir()))}.json"
        target.write_text(text)
        os.utime(target, (self.clock.now, self.clock.now))

    def sealed_text(self, record: RegistryRecord) -> str:
        sealed = seal_record(KEYS, record)
        return comment_body(sealed) if self.sim is not None else file_document(sealed)

    def close(self) -> None:
        for made in self.made:
            made.close()
        if self.sim is not None:
            self.sim.stop()


@pytest.fixture(params=["issue", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = Backend(request.param, tmp_path, Clock())
    yield made
    made.close()


def node(n: int, started_at: float = NOW) -> NodeIdentity:
    pid = f"12D3KooWLife{n:04d}"
    return NodeIdentity(pid, (f"/ip4/203.0.113.{n}/tcp/9100/p2p/{pid}",), "bootstrap", "X64",
                        f"node-{n}", started_at)


def agent(backend: Backend, who: NodeIdentity) -> RegistryAgent:
    return RegistryAgent(backend.registry(), who, HeartbeatSettings(interval=INTERVAL),
                         clock=backend.clock)


def live_ids(backend: Backend) -> list[str]:
    return [r.peer_id for r in backend.registry().list_live(backend.clock.now)]


def test_a_record_claiming_ten_years_lives_a_few_heartbeats(backend: Backend) -> None:
    who = node(1)
    forged = RegistryRecord(who.peer_id, who.multiaddrs, "bootstrap", "X64", "forever",
                            NOW, NOW, NOW + TEN_YEARS)
    backend.post(backend.sealed_text(forged))  # a key holder's record, posted once
    assert live_ids(backend) == [who.peer_id]
    listed = backend.registry().list_live(NOW)[0]
    assert listed.expires_at <= NOW + 4 * INTERVAL  # what readers believe, not the claim
    backend.clock.now += 4 * INTERVAL + 1
    assert live_ids(backend) == []
    # The bootstrap node prunes it like any expired record.
    assert backend.registry().prune(backend.clock.now) == 1


def test_a_record_dated_in_the_future_is_refused(backend: Backend) -> None:
    who = node(2, started_at=NOW + 86400)
    ahead = RegistryRecord(who.peer_id, who.multiaddrs, "bootstrap", "X64", "ahead",
                           NOW + 86400, NOW + 86400, NOW + 86400 + 1800)
    backend.post(backend.sealed_text(ahead))
    assert live_ids(backend) == []
    backend.clock.now += 86400
    # Posting it again later does not help: its issue time is what was sealed.
    assert live_ids(backend) == []


def test_a_withdrawn_record_posted_again_by_anyone_stays_withdrawn(backend: Backend) -> None:
    who = node(3)
    beating = agent(backend, who)
    assert beating.beat().published
    (copied,) = backend.texts()  # anyone can read the (public) issue and keep a copy
    backend.clock.now += 60
    assert beating.withdraw() == 1
    assert live_ids(backend) == []
    backend.clock.now += 60
    backend.post(copied)  # the copy, posted again, well within its own expiry
    assert live_ids(backend) == []
    # Later heartbeats of other nodes (a bootstrap node pruning) do not bring it back either.
    other = RegistryAgent(backend.registry(), node(4),
                          HeartbeatSettings(interval=INTERVAL, prune=True), clock=backend.clock)
    assert other.beat().published
    assert live_ids(backend) == [node(4).peer_id]


def test_the_same_node_restarted_is_live_again(backend: Backend) -> None:
    first = agent(backend, node(5))
    assert first.beat().published
    assert first.withdraw() == 1
    assert live_ids(backend) == []
    backend.clock.now += 120
    again = agent(backend, node(5, started_at=backend.clock.now))  # same identity, new run
    assert again.beat().published
    assert live_ids(backend) == [node(5).peer_id]


def test_an_older_record_of_a_running_node_does_not_replace_its_newer_one(
        backend: Backend) -> None:
    who = node(6)
    beating = agent(backend, who)
    assert beating.beat().published
    (first,) = backend.texts()
    backend.clock.now += INTERVAL
    assert beating.beat().published
    backend.post(first)  # an old copy posted after the newer record
    (listed,) = backend.registry().list_live(backend.clock.now)
    assert listed.issued_at == backend.clock.now  # the newer one is believed


def test_readers_believe_records_four_default_intervals() -> None:
    from github_p2p.registry.listing import DEFAULT_MAX_AGE

    assert HeartbeatSettings().max_age == DEFAULT_MAX_AGE == 4 * HeartbeatSettings().interval
    assert HeartbeatSettings(interval=60).max_age == 240
