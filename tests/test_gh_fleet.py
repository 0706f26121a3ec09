"""Debian's gh through the wrapper on two runners of one fleet (two daemons and a hub in this
process, the simulator over HTTPS as a GitHub Enterprise host): ``gh api graphql`` and
``gh pr list --json`` each cost one upstream call for the fleet, and print exactly what gh
prints when it talks to GitHub directly. Also the daemon's ``/_p2p/outputs`` routes the
wrapper shares ``--json`` outputs through."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import requests
import trio
from gh_support import REAL_GH, gh_environment, needs_real_gh
from test_metrics import ITERATIONS, SECRET, in_process_fleet

from github_p2p.cli.gh.sharing import OutputShare
from github_p2p.config import ClientSettings
from github_p2p.core.keys import derive_master_key, network_key_from_master
from github_p2p.errors import FleetUnavailableError
from github_p2p.nodes.endpoint import build_app
from github_p2p.nodes.hub.service import HubService, HubSettings
from github_p2p.nodes.peer import PeerDaemon, PeerSettings
from github_p2p.nodes.runtime import serve_http
from github_p2p.p2p.link import LinkSettings
from github_p2p.testing.localfleet import free_port
from github_p2p.testing.simulator import GitHubSimulator

pytestmark = pytest.mark.timeout(300)

REPO = "octo/hello"
TOKEN = "ghp_fleetgh01"
QUERY = ('query={ repository(owner: "octo", name: "hello") { pullRequests(first: 5, '
         "states: OPEN) { totalCount nodes { number title } } } }")


@asynccontextmanager
async def two_runners(api_url: str, tmp_path: Path) -> AsyncIterator[list[PeerDaemon]]:
    key = network_key_from_master(derive_master_key(SECRET, iterations=ITERATIONS))
    hub = HubService(HubSettings(cache_dir=tmp_path / "hub", network_key=key,
                                 listen_host="127.0.0.1", port=free_port()))
    async with trio.open_nursery() as nursery:
        running = await nursery.start(hub.run)
        await serve_http(nursery, build_app(hub), "127.0.0.1", free_port(), hub.shutdown)
        daemons = [PeerDaemon(PeerSettings(
            client=ClientSettings(api_url=api_url, scope=REPO), cache_dir=tmp_path / f"r{i}",
            secret=SECRET, bootstrap=(running.multiaddrs[0],), listen_host="127.0.0.1",
            port=free_port(), http_port=free_port(), kdf_iterations=ITERATIONS,
            runner_name=f"r{i}", link=LinkSettings(report_interval=0.1)))
            for i in range(2)]
        for daemon in daemons:
            await nursery.start(daemon.run)
        try:
            yield daemons
        finally:
            for daemon in daemons:
                daemon.request_shutdown()
            hub.request_shutdown()
            nursery.cancel_scope.cancel()


def graphql_calls(sim: GitHubSimulator) -> int:
    return sum(1 for r in sim.records() if r.path == "/graphql")


@needs_real_gh
async def test_real_gh_through_the_wrapper_on_two_runners_costs_one_call(
        https_sim: GitHubSimulator, tls: tuple[Path, ssl.SSLContext], tmp_path: Path) -> None:
    assert REAL_GH is not None
    gh_env = gh_environment(https_sim, tls[0], tmp_path, TOKEN)
    api_url = f"{https_sim.url}/api/v3"  # what gh talks to for this host

    def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(argv, env=env, capture_output=True, timeout=120)

    commands = (["api", "graphql", "-f", QUERY],
                ["pr", "list", "-R", REPO, "--json", "number,title"])
    rest = ["api", f"repos/{REPO}/releases?per_page=2", "--paginate"]
    direct = {}
    for argv in commands:
        https_sim.reset_records()
        done = await trio.to_thread.run_sync(run, [REAL_GH, *argv], gh_env)
        assert done.returncode == 0, done.stderr
        assert graphql_calls(https_sim) == 1
        direct[argv[0]] = done.stdout

    async with two_runners(api_url, tmp_path) as runners:
        envs = [{**gh_env, "GITHUB_P2P_ENDPOINT": runner.endpoint or "",
                 "GITHUB_API_URL": api_url, "GITHUB_P2P_REAL_GH": REAL_GH,
                 "GITHUB_P2P_CACHE_DIR": str(tmp_path / f"wrapper{i}"),
                 "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{gh_env['PATH']}"}
                for i, runner in enumerate(runners)]
        wrapper = [sys.executable, "-m", "github_p2p.cli", "gh"]
        for argv in commands:
            https_sim.reset_records()
            outputs: list[subprocess.CompletedProcess[bytes]] = []

            async def one(env: dict[str, str], argv: list[str] = argv,
                          outputs: list[subprocess.CompletedProcess[bytes]] = outputs) -> None:
                outputs.append(await trio.to_thread.run_sync(run, [*wrapper, *argv], env))

            async with trio.open_nursery() as nursery:  # both runners at once
                for env in envs:
                    nursery.start_soon(one, env)
            assert [o.returncode for o in outputs] == [0, 0], [o.stderr for o in outputs]
            assert [o.stdout for o in outputs] == [direct[argv[0]]] * 2, argv
            assert graphql_calls(https_sim) == 1, argv  # one call for the fleet
            await one(envs[1])  # and later, from the fleet, still one
            assert outputs[-1].stdout == direct[argv[0]] and graphql_calls(https_sim) == 1

        # REST through the daemon prints GitHub's own URLs, as gh does (not the daemon's).
        https_sim.reset_records()
        direct_rest = await trio.to_thread.run_sync(run, [REAL_GH, *rest], gh_env)
        for env in envs:
            wrapped = await trio.to_thread.run_sync(run, [*wrapper, *rest], env)
            assert wrapped.returncode == 0 and wrapped.stdout == direct_rest.stdout
        assert len(https_sim.records()) == 3 * 2  # gh's three pages, then the fleet's three

        # A write through the wrapper forgets the shared outputs fleet-wide.
        https_sim.reset_records()
        write = ["api", "-X", "POST", f"repos/{REPO}/issues", "-f", "title=fleet write"]
        assert (await trio.to_thread.run_sync(run, [*wrapper, *write], envs[0])).returncode == 0
        listed = await trio.to_thread.run_sync(run, [*wrapper, *commands[1]], envs[1])
        assert listed.returncode == 0 and graphql_calls(https_sim) == 1
        stats = [r.stats() for r in runners]
        # The wrapper's gh api graphql went through the daemons; gh pr list's calls did not.
        assert sum(s["graphql_calls"] for s in stats) == 1


async def test_output_sharing_routes(sim: GitHubSimulator, tmp_path: Path) -> None:
    async with in_process_fleet(sim, tmp_path) as fleet:
        first, second = (OutputShare(r.endpoint or "", 30) for r in fleet.runners)

        def steps() -> None:
            with first, second:
                private = "a" * 64
                assert first.claim(private, 60, True) == (None, None)
                first.fill(private, 60, True, b"mine", None)
                assert first.claim(private, 60, True) == (b"mine", None)
                assert second.claim(private, 60, True) == (None, None)  # never shared
                shared = "b" * 64
                output, lease = first.claim(shared, 60, False)
                assert output is None and lease
                first.release(shared, lease)  # gh failed: the next runner gets the lease
                output, lease = second.claim(shared, 60, False)
                assert output is None and lease
                second.fill(shared, 60, False, b"ours", lease)
                assert first.claim(shared, 60, False) == (b"ours", None)
                second.forget()
                assert first.claim(shared, 60, False)[0] is None
                with pytest.raises(FleetUnavailableError, match="HTTP 400"):
                    first.claim("not hex!", 60, False)
                with pytest.raises(FleetUnavailableError, match="HTTP 400"):
                    first.claim(shared, 7200, False)

        await trio.to_thread.run_sync(steps)
        refused = await trio.to_thread.run_sync(lambda: requests.post(
            f"{fleet.runners[0].endpoint}/_p2p/outputs/forget", timeout=10))
        assert refused.status_code == 403  # control routes need the control header
