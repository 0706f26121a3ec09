"""Shared fixtures: a real simulated GitHub API server and clients against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from github_p2p.testing.redisserver import RedisClusterNodes, RedisServer, redis_server_path
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

# The HTTPS simulator and CA fixtures of the tests that drive gh.
pytest_plugins = ["gh_support"]


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    """A fresh GitHub simulator on 127.0.0.1 with an ephemeral port."""
    with GitHubSimulator(SimulatorConfig(rate_limit=5000)) as simulator:
        yield simulator


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, nothing on disk; stopped afterwards."""
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (scripts/ensure-redis installs it)")
    with RedisServer(workdir=tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory) -> Iterator[RedisClusterNodes]:
    """A real three-node Redis Cluster on loopback, shared by a module (flush it per test)."""
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (scripts/ensure-redis installs it)")
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.close()


class FakeClock:
    """Wall-clock time that tests move by hand; ``sleep`` advances it and is recorded."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
