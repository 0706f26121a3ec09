"""A whole fleet run with a recognisable secret and tokens: none of them may leak anywhere.

The fleet (a hub and three runners, one of them logging at debug level, one whose GitHub is
unreachable) serves hits, misses, peer hits, errors, rate limits, writes and status pages to
callers with their own token and without one. Then every byte that could be seen afterwards is
searched, in several encodings, for the secret, the tokens and the keys derived from the secret:
every file under the fleet's work directory (node logs, ready files, identity keys, the local and
hub cache databases with their journals), every HTTP answer the nodes gave (headers and body),
the output of the CLI, the command lines of the node processes, and every issue comment of the
repository (where a registry would publish).
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_faults_support import START, auth, contents, figures, node_stats, session

from github_p2p.core.keys import (
    derive_master_key,
    fleet_keys_from_master,
    network_key_from_master,
)
from github_p2p.testing.localfleet import LocalFleet, NodeProcess, free_port
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

SECRET = "Canary-Fleet-Secret-7f3a9c2e"
DAEMON_TOKEN = "ghs_CanaryDaemonToken0123456789abcdefAB"
CALLER_TOKEN = "ghp_CanaryCallerToken9876543210zyxwvuZY"
REPO = "octo/hello"


def needles() -> dict[str, bytes]:
    """Every form in which the secrets could leak, by a name for the failure message."""
    master = derive_master_key(SECRET)
    keys = fleet_keys_from_master(master, REPO)
    secrets = {"secret": SECRET.encode(), "daemon token": DAEMON_TOKEN.encode(),
               "caller token": CALLER_TOKEN.encode()}
    found: dict[str, bytes] = {}
    for name, value in secrets.items():
        found[name] = value
        found[f"{name} (base64)"] = base64.b64encode(value)
        found[f"{name} (hex)"] = value.hex().encode()
        found[f"{name} (utf-16)"] = value.decode().encode("utf-16-le")
    for name, key in (("master key", master), ("network key", network_key_from_master(master)),
                      ("sealing key", keys.aead_key), ("mac key", keys.mac_key)):
        found[name] = key
        found[f"{name} (hex)"] = key.hex().encode()
        found[f"{name} (base64)"] = base64.b64encode(key)
    return found


def leaks(data: bytes, where: str, table: dict[str, bytes]) -> list[str]:
    lowered = data.lower()
    return [f"{name} in {where}" for name, needle in table.items()
            if needle in data or (needle.isascii() and needle.lower() in lowered)]


def answer_bytes(resp) -> bytes:
    head = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
    return f"{resp.status_code}\n{head}\n\n".encode() + resp.content


def cli(*args: str, endpoint: str, token: str | None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    env.update(GITHUB_P2P_ENDPOINT=endpoint, GITHUB_REPOSITORY=REPO)
    if token:
        env["GH_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "github_p2p.cli", *args], env=env,
                          capture_output=True, timeout=120)


def test_no_secret_or_token_leaks_anywhere(tmp_path):
    table = needles()
    seen: list[tuple[str, bytes]] = []
    paths = contents("secret", 6)
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url, workdir=tmp_path, secret=SECRET,
                       extra_env={"GITHUB_TOKEN": DAEMON_TOKEN}) as fleet:
        hub = fleet.start_hub(timeout=START)
        nodes: list[NodeProcess] = [
            fleet.start_peer(wait=False, env={"GITHUB_P2P_LOG_LEVEL": "debug"}),
            fleet.start_peer(wait=False),
            fleet.start_peer(wait=False,
                             env={"GITHUB_API_URL": f"http://127.0.0.1:{free_port()}"}),
        ]
        for node in nodes:
            node.wait_ready(START)
        loud, quiet, cut_off = nodes

        def call(node: NodeProcess, method: str, path: str, token: str | None = CALLER_TOKEN,
                 **kwargs) -> None:
            headers = auth(token) if token else {}
            resp = session().request(method, node.endpoint + path, headers=headers,
                                     timeout=120, **kwargs)
            seen.append((f"{method} {node.name}{path} -> {resp.status_code}",
                         answer_bytes(resp)))

        for path in paths:  # misses on one runner, peer hits on the other, then local hits
            call(loud, "GET", path)
            call(quiet, "GET", path, token=None)  # the daemon's own token upstream
            call(quiet, "GET", path)
        call(loud, "GET", f"/repos/{REPO}/issues", params={"per_page": 5})
        call(loud, "GET", f"/repos/{REPO}/nothing-here")  # 404
        sim.fail_next(4)
        call(quiet, "GET", f"/repos/{REPO}/contents/outage.txt")  # GitHub's own 502
        sim.secondary_limit_next(1, retry_after=1, status=429)
        call(loud, "GET", f"/repos/{REPO}/contents/limited.txt")
        call(loud, "POST", f"/repos/{REPO}/issues/1/comments", json={"body": "hello"})
        call(quiet, "GET", "/user")  # bypassed: answered per token, never cached
        call(cut_off, "GET", paths[0])  # GitHub unreachable: our own 502 message
        for node in [hub, *nodes]:
            for page in ("/_p2p/health", "/_p2p/stats", "/_p2p/peers", "/metrics",
                         "/api/mcp/peers", "/api/mcp/cache/stats"):
                call(node, "GET", page, token=None)
        call(hub, "GET", "/", token=None)
        served = [label for label, _ in seen if label.endswith("-> 200")]
        assert len([label for label in served if "/contents/secret/" in label]) == 3 * len(paths)
        assert node_stats(quiet)["peer_hits"] >= 1

        outputs = [
            cli("api", paths[0], endpoint=quiet.endpoint, token=CALLER_TOKEN),
            cli("api", f"/repos/{REPO}/nothing-here", endpoint=quiet.endpoint,
                token=CALLER_TOKEN),
            cli("stats", "--json", endpoint=loud.endpoint, token=None),
        ]
        assert outputs[0].returncode == 0 and outputs[1].returncode == 1
        for index, out in enumerate(outputs):
            seen.append((f"cli #{index} stdout", out.stdout))
            seen.append((f"cli #{index} stderr", out.stderr))
        for node in [hub, *nodes]:
            with open(f"/proc/{node.process.pid}/cmdline", "rb") as cmdline:
                seen.append((f"{node.name} command line", cmdline.read()))
        comments = session().get(f"{sim.url}/repos/{REPO}/issues/comments",
                                 headers=auth("ghs_reader"), timeout=30)
        seen.append(("issue comments", comments.content))
        for node in [*nodes, hub]:
            assert node.stop() == 0  # a clean stop flushes logs and closes the databases

        # The local stores hold responses in the clear: readable by their owner only.
        stores = list(Path(tmp_path).glob("*/cache/local"))
        assert len(stores) == len(nodes)
        assert all(stat.S_IMODE(store.stat().st_mode) == 0o700 for store in stores)

        files = [f for f in Path(tmp_path).rglob("*") if f.is_file()]
        assert any(f.name == "node.log" for f in files)
        assert any(f.name == "cache.db" for f in files)
        assert (tmp_path / loud.name / "node.log").stat().st_size > 10_000  # debug logging
        for file in files:
            seen.append((str(file.relative_to(tmp_path)), file.read_bytes()))

    assert leaks(b"token=" + CALLER_TOKEN.encode(), "probe", table)  # the search does find
    found = [leak for where, data in seen for leak in leaks(data, where, table)]
    assert found == []
    figures("secrets", needles=len(table), files=len(files),
            answers=sum(" -> " in where for where, _ in seen),
            megabytes_searched=round(sum(len(data) for _, data in seen) / 2**20, 1), leaks=0)
