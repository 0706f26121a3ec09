"""The peer registry: the pure record format, one contract suite run against both registries
(issue comments on the simulator, a directory), and the heartbeat agent."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trio

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.core.keys import FleetKeys
from github_p2p.errors import (
    ConfigError,
    EnvelopeFormatError,
    ForeignKeyError,
    TamperedEntryError,
    WrongEntryIdError,
)
from github_p2p.registry import (
    FileRegistry,
    HeartbeatSettings,
    IssueLocation,
    IssueRegistry,
    NodeIdentity,
    Registry,
    RegistryAgent,
    RegistryOptions,
    RegistryRecord,
    SealedRecord,
    hubs_to_dial,
    registry_keys,
)
from github_p2p.registry.record import (
    comment_body,
    file_document,
    open_record,
    parse_comment,
    parse_file,
    peer_tag,
    seal_record,
)
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

NOW = 1_800_000_000.0
REPO = "octo/hello"
KEYS = registry_keys(bytes(range(32)))
FOREIGN = registry_keys(bytes(range(1, 33)))


@pytest.fixture
def sim(clock: Any) -> Iterator[GitHubSimulator]:
    """The simulator on the test's clock (from NOW): comments are posted when the records in
    them were issued, as readers expect (a record issued after it was posted is refused)."""
    with GitHubSimulator(SimulatorConfig(rate_limit=5000), clock=clock) as simulator:
        yield simulator


def peer(n: int) -> str:
    return f"12D3KooWPeer{n:04d}"


def record(n: int, *, expires: float = NOW + 1800, role: str = "runner",
           runner: str | None = None) -> RegistryRecord:
    pid = peer(n)
    return RegistryRecord(pid, (f"/ip4/10.0.0.{n % 250}/tcp/9000/p2p/{pid}",), role, "X64",
                          runner if runner is not None else f"runner-{n}", NOW - 60, NOW - 60,
                          expires)


# -- the record format (pure) ------------------------------------------------------------------


def test_a_sealed_comment_round_trips_and_hides_the_addresses() -> None:
    rec = record(7, role="bootstrap")
    body = comment_body(seal_record(KEYS, rec))
    assert "10.0.0.7" not in body and "/ip4/" not in body and "runner-7" not in body
    assert f"<!-- github-p2p:peer:{peer_tag(KEYS, rec.peer_id)} -->" in body
    sealed = parse_comment(body)
    assert sealed is not None and open_record(KEYS, sealed) == rec
    assert parse_file(file_document(sealed)) == sealed


def test_what_someone_without_the_key_makes_never_opens() -> None:
    rec = record(1)
    mine = seal_record(KEYS, rec)
    with pytest.raises(ForeignKeyError):
        open_record(KEYS, seal_record(FOREIGN, rec))
    # Our own valid record copied under another peer's marker.
    with pytest.raises(WrongEntryIdError):
        open_record(KEYS, SealedRecord(peer_tag(KEYS, peer(2)), mine.envelope))
    flipped = bytearray(mine.envelope)
    flipped[-1] ^= 1
    with pytest.raises(TamperedEntryError):
        open_record(KEYS, SealedRecord(mine.tag, bytes(flipped)))


@pytest.mark.parametrize("body", [
    "<!-- github-p2p:peer:zz -->\nhello",
    f"<!-- github-p2p:peer:{'a' * 32} -->\n<!-- github-p2p:record:v1:!!! -->",
    f"<!-- github-p2p:peer:{'a' * 32} -->\n<!-- github-p2p:record:v1:AAAA -->",
    f"<!-- github-p2p:peer:{'a' * 32} -->\n<!-- github-p2p:record:v9:AAAA -->",
    "github-p2p:peer:" + "x" * 20_000,
])
def test_malformed_comments_are_told_apart(body: str) -> None:
    with pytest.raises(EnvelopeFormatError):
        sealed = parse_comment(body)
        assert sealed is not None
        open_record(KEYS, sealed)


def test_unrelated_comments_are_not_records() -> None:
    assert parse_comment("LGTM! :rocket:") is None


@pytest.mark.parametrize("change", [
    {"role": "admin"}, {"peer_id": ""}, {"multiaddrs": ("x",) * 9},
    {"runner_name": "a\nb"}, {"expires_at": NOW - 3600}, {"started_at": float("nan")},
])
def test_records_are_bounded(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(record(1), **change)  # type: ignore[arg-type]


def test_runners_link_to_listed_hubs_once_and_to_moved_hubs_again() -> None:
    hub = record(1, role="bootstrap")
    moved = dataclasses.replace(hub, multiaddrs=(f"/ip4/10.9.9.9/tcp/9100/p2p/{hub.peer_id}",))
    runner = record(2)
    assert hubs_to_dial([hub, runner], known_addrs=[], connected_hubs=[],
                        own_peer_id=None) == [hub.multiaddrs[0]]
    assert hubs_to_dial([hub], known_addrs=hub.multiaddrs, connected_hubs=[],
                        own_peer_id=None) == []
    # The configured address went stale: the registry's new one gets its own link...
    assert hubs_to_dial([moved], known_addrs=hub.multiaddrs, connected_hubs=[],
                        own_peer_id=None) == [moved.multiaddrs[0]]
    # ...unless the hub is connected already.
    assert hubs_to_dial([moved], known_addrs=hub.multiaddrs, connected_hubs=[hub.peer_id],
                        own_peer_id=None) == []


def test_registry_options_from_the_command_line(tmp_path: Path) -> None:
    assert RegistryOptions.from_cli(None, None) is None
    assert RegistryOptions.from_cli("12", None) == RegistryOptions(issue=12)
    assert RegistryOptions.from_cli("auto", None, 60.0).find_issue  # type: ignore[union-attr]
    assert RegistryOptions.from_cli(None, tmp_path).directory == tmp_path  # type: ignore[union-attr]
    for bad in (("0", None), ("x", None), ("3", tmp_path)):
        with pytest.raises(ConfigError):
            RegistryOptions.from_cli(*bad)
    with pytest.raises(ConfigError):
        HeartbeatSettings(interval=600, ttl=600)


# -- contract tests: both registries -----------------------------------------------------------


class Backend:
    """One registry implementation plus raw access to its storage (to plant bad entries)."""

    def __init__(self, kind: str, sim: GitHubSimulator | None, tmp: Path) -> None:
        self.kind, self.sim, self.tmp = kind, sim, tmp
        self.made: list[Registry] = []
        self.http = requests.Session()

    def registry(self, keys: FleetKeys = KEYS) -> Registry:
        made: Registry
        if self.kind == "issue":
            assert self.sim is not None
            client = GitHubClient.in_process(ClientSettings(
                api_url=self.sim.url, token="ghp_registrynode", scope=REPO))
            made = IssueRegistry(client, IssueLocation(REPO, 1), keys, clock=lambda: NOW,
                                 owns_client=True)
        else:
            made = FileRegistry(self.tmp / "registry", keys, clock=lambda: NOW)
        self.made.append(made)
        return made

    def plant(self, text: str, name: str) -> None:
        """Store ``text`` as a comment body or as file ``name``."""
        if self.kind == "issue":
            assert self.sim is not None
            resp = self.http.post(f"{self.sim.url}/repos/{REPO}/issues/1/comments",
                                  json={"body": text},
                                  headers={"Authorization": "Bearer ghp_outsider"})
            assert resp.status_code == 201
        else:
            (self.tmp / "registry").mkdir(exist_ok=True)
            (self.tmp / "registry" / name).write_text(text)

    def plant_sealed(self, sealed: SealedRecord) -> None:
        text = comment_body(sealed) if self.kind == "issue" else file_document(sealed)
        self.plant(text, sealed.tag + ".json")

    def close(self) -> None:
        for made in self.made:
            made.close()
        self.http.close()


@pytest.fixture(params=["issue", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    sim = request.getfixturevalue("sim") if request.param == "issue" else None
    made = Backend(request.param, sim, tmp_path)
    yield made
    made.close()


def test_publish_then_list(backend: Backend) -> None:
    reg = backend.registry()
    reg.publish(record(1))
    reg.publish(record(2, role="bootstrap"))
    assert reg.list_live(NOW) == (record(1), record(2, role="bootstrap"))
    # A second reader with the same key sees the same.
    assert backend.registry().list_live(NOW) == (record(1), record(2, role="bootstrap"))


def test_each_node_keeps_exactly_one_entry(backend: Backend) -> None:
    reg = backend.registry()
    for minute in range(3):
        reg.publish(record(1, expires=NOW + 1800 + 60 * minute))
    # A restart of the same node (same peer id, a new process) takes over its old entry.
    restarted = dataclasses.replace(record(1, expires=NOW + 2000), started_at=NOW - 30,
                                    issued_at=NOW - 30)
    backend.registry().publish(restarted)
    listing = backend.registry().scan(NOW)
    assert listing.entries == 1 and listing.live == (restarted,)


def test_runner_names_need_not_be_unique(backend: Backend) -> None:
    reg = backend.registry()
    reg.publish(record(1, runner="ubuntu-latest"))
    reg.publish(record(2, runner="ubuntu-latest"))
    assert [r.peer_id for r in reg.list_live(NOW)] == [peer(1), peer(2)]


def test_withdraw_removes_only_that_node(backend: Backend) -> None:
    reg = backend.registry()
    reg.publish(record(1))
    reg.publish(record(2))
    gone = dataclasses.replace(record(1), multiaddrs=(), seq=1, withdrawn=True)
    assert reg.withdraw(gone) == 1
    listing = backend.registry().scan(NOW)
    assert [r.peer_id for r in listing.live] == [peer(2)]
    # The withdrawal stays in the node's one entry, so that no copy of its record counts.
    assert listing.entries == 2 and listing.withdrawals == 1
    assert reg.counters.get("withdrawn") == 1


def test_expired_records_are_dropped_and_pruned(backend: Backend) -> None:
    reg = backend.registry()
    for n in range(5):
        reg.publish(record(n, expires=NOW - 1 if n < 3 else NOW + 600))
    listing = reg.scan(NOW)
    assert [r.peer_id for r in listing.live] == [peer(3), peer(4)]
    assert len(listing.expired) == 3
    assert reg.prune(NOW, listing=listing, limit=2) == 2
    assert reg.prune(NOW) == 1
    after = backend.registry().scan(NOW)
    assert after.entries == 2 and not after.expired
    assert reg.counters.get("pruned") == 3


def test_forged_malformed_and_unrelated_entries_are_counted_never_used(
        backend: Backend) -> None:
    reg = backend.registry()
    reg.publish(record(1))
    backend.registry(FOREIGN).publish(record(2))                  # another fleet's key
    mine = seal_record(KEYS, record(3))
    backend.plant_sealed(SealedRecord(peer_tag(KEYS, peer(4)), mine.envelope))  # replayed
    flipped = bytearray(mine.envelope)
    flipped[40] ^= 0xFF
    backend.plant_sealed(SealedRecord(mine.tag, bytes(flipped)))  # tampered
    backend.plant(f"<!-- github-p2p:peer:{'b' * 32} -->\n<!-- github-p2p:record:v1:QUJD -->",
                  f"{'b' * 32}.json")                             # malformed
    backend.plant("Nice fleet! Where do I sign up?", "notes.json")  # unrelated (or malformed)
    listing = reg.scan(NOW)
    assert listing.live == (record(1),)
    assert listing.forged == 3
    if backend.kind == "issue":
        assert (listing.malformed, listing.unrelated, listing.entries) == (1, 1, 6)
    else:  # in a registry directory, every .json file is meant to be a record
        assert (listing.malformed, listing.unrelated, listing.entries) == (2, 0, 6)
    assert reg.counters.snapshot()["registry_forged"] == 3


# -- the heartbeat agent -----------------------------------------------------------------------


def identity(n: int, role: str = "runner") -> NodeIdentity:
    rec = record(n, role=role)
    return NodeIdentity(rec.peer_id, rec.multiaddrs, role, rec.arch, rec.runner_name,
                        rec.started_at)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_a_beat_reads_publishes_and_on_bootstrap_nodes_prunes(tmp_path: Path) -> None:
    clock = Clock()
    stale = FileRegistry(tmp_path, KEYS, clock=clock)
    stale.publish(record(9, expires=NOW - 5))
    runner = RegistryAgent(FileRegistry(tmp_path, KEYS, clock=clock), identity(1),
                           HeartbeatSettings(interval=60), clock=clock)
    hub = RegistryAgent(FileRegistry(tmp_path, KEYS, clock=clock), identity(2, "bootstrap"),
                        HeartbeatSettings(interval=60, prune=True), clock=clock)
    first = runner.beat()
    assert first.published and first.pruned == 0 and first.error is None
    assert first.listing is not None and first.listing.live == ()  # read before writing
    beat = hub.beat()
    assert beat.pruned == 1 and beat.listing is not None
    assert [r.peer_id for r in beat.listing.live] == [peer(1)]
    live = FileRegistry(tmp_path, KEYS).list_live(NOW)
    assert [(r.peer_id, r.expires_at) for r in live] == [(peer(1), NOW + 180),
                                                          (peer(2), NOW + 180)]
    assert hub.stats()["registry_heartbeats"] == 1 and hub.stats()["registry_pruned"] == 1


def test_a_failing_registry_is_logged_and_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    reg = FileRegistry(tmp_path / "reg", KEYS)
    agent = RegistryAgent(reg, identity(1), HeartbeatSettings(interval=60))
    (tmp_path / "reg").rmdir()
    blocker.write_text("")
    (tmp_path / "reg").symlink_to(blocker)
    beat = agent.beat()
    assert beat.error is not None and not beat.published
    assert agent.stats()["registry_errors"] == 1
    assert agent.withdraw() == 0  # never published: nothing to delete


async def test_the_agent_task_beats_on_schedule_and_withdraws_on_exit(tmp_path: Path) -> None:
    seen: list[int] = []
    me = dataclasses.replace(identity(1), started_at=time.time())
    agent = RegistryAgent(FileRegistry(tmp_path, KEYS), me,
                          HeartbeatSettings(interval=0.1, jitter=0.5),
                          on_listing=lambda listing: seen.append(listing.entries))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            assert seen == [0]  # the first beat is over before the node says it is ready
            live = FileRegistry(tmp_path, KEYS).list_live(time.time())
            assert [r.peer_id for r in live] == [peer(1)]
            while len(seen) < 3:
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    assert seen[:3] == [0, 1, 1]
    assert agent.stats()["registry_heartbeats"] >= 3
    # Withdrawn on the way out: the node's one file now holds its withdrawal.
    listing = FileRegistry(tmp_path, KEYS).scan(time.time())
    assert listing.live == () and listing.withdrawals == 1 and listing.entries == 1
