"""Hostile HTTP to a runner's local endpoint, and hostile bootstrap configuration.

The daemon binds its endpoint to 127.0.0.1 only, so only processes of the runner reach it; its
guard also refuses a non-loopback ``Host`` (a DNS-rebinding page in a local browser) and a
non-loopback client address. Requests are written byte by byte on raw sockets, so nothing
normalises them on the way. The API base URL has a path (``/api/v3``, as on GitHub Enterprise
Server) to show that no request path climbs out of it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from test_faults_support import START, node_stats, session

from github_p2p.nodes.endpoint import build_app
from github_p2p.nodes.proxy import MAX_BODY
from github_p2p.testing.localfleet import LocalFleet, NodeProcess, free_port
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

BASE = "/api/v3"
HUB_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


class Canary:
    """A listener that records whether anything ever connects to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, NodeProcess, Canary]]:
    canary = Canary()
    with GitHubSimulator(SimulatorConfig(rate_limit=1_000_000)) as sim, \
            LocalFleet(sim.url + BASE, workdir=tmp_path_factory.mktemp("http")) as fleet:
        peer = fleet.start_peer(bootstrap="", timeout=START)
        yield sim, peer, canary
    canary.close()


def port_of(node: NodeProcess) -> int:
    return int(node.endpoint.rsplit(":", 1)[1])


def raw(port: int, request: bytes, *, source: str = "127.0.0.1") -> bytes:
    """Send ``request`` as is and return everything read back ("" when the server hung up)."""
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.settimeout(15)
        sock.connect(("127.0.0.1", port))
        with contextlib.suppress(OSError):  # refused mid-way: its answer is still readable
            sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


def status(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None  # closed without an answer
    return int(answer.split(b" ", 2)[1])


def request(target: bytes, host: bytes = b"127.0.0.1", extra: bytes = b"") -> bytes:
    return (b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + extra
            + b"Connection: close\r\n\r\n")


TRAVERSALS = [
    b"/../../_simulator/requests",
    b"/%2e%2e/%2e%2e/_simulator/requests",
    b"/%2E%2E/_simulator/requests",
    b"/repos/..%2f..%2f..%2f_simulator/requests",
    b"/repos/octo/hello/%252e%252e/%252e%252e/x",
    b"/repos/octo/hello/./contents",
    b"/repos\\..\\..\\_simulator\\requests",
    b"/repos/octo/hello%00",
    b"/repos/octo/hello%09",
]


def test_paths_that_would_leave_the_api_base_are_refused(world):
    sim, peer, _ = world
    before = len(sim.records())
    for target in TRAVERSALS:
        answer = raw(port_of(peer), request(target))
        assert status(answer) == 400, (target, answer[:200])
        assert b"refused request path" in answer
        assert b'"token"' not in answer  # the simulator's records never leak through
    # A path with an encoded line break is refused like the other control characters.
    answer = raw(port_of(peer), request(b"/repos/octo/hello%0d%0aX-Injected:%20yes"))
    assert status(answer) == 400 and b"x-injected" not in answer.lower()
    assert len(sim.records()) == before  # nothing was forwarded
    # An ordinary request is forwarded under the base path, and a decoded "#" or "?" stays
    # part of the path instead of cutting it short (GitHub would see another file).
    assert status(raw(port_of(peer), request(b"/repos/octo/hello/contents/a%23b%3Fc.txt"))) == 200
    forwarded = sim.records()[before:]
    # (The simulator records paths relative to the base, as GitHub Enterprise routes them.)
    assert [(r.path, r.query) for r in forwarded] == [
        ("/repos/octo/hello/contents/a%23b%3Fc.txt", "")], forwarded


def test_absolute_form_and_authority_tricks_never_leave_the_api_host(world):
    sim, peer, canary = world
    before = len(sim.records())
    elsewhere = f"127.0.0.1:{canary.port}".encode()
    for target in (b"http://" + elsewhere + b"/repos/octo/hello", b"//" + elsewhere + b"/x",
                   b"/@" + elsewhere + b"/x", b"*"):
        answer = raw(port_of(peer), request(target))
        assert status(answer) in (400, 404), (target, answer[:200])
    # CONNECT to another port of this machine: no route serves it, nothing is tunnelled.
    answer = raw(port_of(peer), b"CONNECT " + elsewhere + b" HTTP/1.1\r\nHost: " + elsewhere
                 + b"\r\nConnection: close\r\n\r\n")
    assert status(answer) in (403, 404, 405)
    assert canary.connections == 0
    # The two that were forwarded went to the API host, as paths under its base.
    assert sorted(r.path for r in sim.records()[before:]) == [
        f"/127.0.0.1:{canary.port}/x", f"/@127.0.0.1:{canary.port}/x"]


def test_oversized_requests_are_refused(world):
    sim, peer, _ = world
    before = len(sim.records())
    many_headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 100) for i in range(10_000))
    for answer in (
        raw(port_of(peer), request(b"/repos/octo/hello", extra=b"X-Big: " + b"a" * 1_000_000
                                   + b"\r\n")),
        raw(port_of(peer), request(b"/repos/octo/hello", extra=many_headers)),
        raw(port_of(peer), request(b"/repos/octo/" + b"a" * 1_000_000)),
    ):
        assert status(answer) in (None, 400, 414, 431), answer[:200]
    body = b"{" + b" " * (MAX_BODY + 1024) + b"}"
    answer = raw(port_of(peer), b"POST /repos/octo/hello/issues HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    assert status(answer) in (None, 413), answer[:200]
    assert len(sim.records()) == before


@pytest.mark.parametrize("host", [b"evil.example", b"127.0.0.1.evil.example",
                                  b"localhost.evil.example:80", b"evil.example:127.0.0.1",
                                  b"[::ffff:203.0.113.9]", b"0.0.0.0"])
def test_non_loopback_host_header_is_refused(world, host):
    sim, peer, _ = world
    before = len(sim.records())
    answer = raw(port_of(peer), request(b"/repos/octo/hello", host=host))
    assert status(answer) == 403 and b"loopback clients only" in answer
    # A WebSocket handshake from a rebinding page gets no further.
    upgrade = request(b"/repos/octo/hello", host=host, extra=(
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
    assert status(raw(port_of(peer), upgrade.replace(b"Connection: close", b"Connection: Upgrade")
                      )) in (None, 403, 404)
    assert len(sim.records()) == before


def test_loopback_callers_are_served(world):
    _, peer, _ = world
    before = node_stats(peer)["requests"]
    # Any 127.0.0.0/8 source is loopback: the daemon binds 127.0.0.1, so nothing else can
    # reach it; a Host of localhost or [::1] is accepted.
    for source, host in (("127.0.0.2", b"127.0.0.1"), ("127.0.0.1", b"localhost"),
                         ("127.0.0.1", b"[::1]:8080"), ("127.0.0.1", b"[::1]")):
        answer = raw(port_of(peer), request(b"/repos/octo/hello", host=host), source=source)
        assert status(answer) == 200 and b"x-github-p2p-cache" in answer.lower()
    # HTTP/1.0 without a Host header cannot prove it is loopback: refused.
    assert status(raw(port_of(peer), b"GET /repos/octo/hello HTTP/1.0\r\n\r\n")) == 403
    assert node_stats(peer)["requests"] == before + 4
    assert session().get(peer.endpoint + "/_p2p/health", timeout=30).status_code == 200
    assert peer.process.poll() is None


class _Node:
    role = "runner"

    def health(self) -> dict[str, Any]:
        return {"status": "local-only"}

    def stats(self) -> dict[str, Any]:
        return {"requests": 0}

    def peers(self) -> list[dict[str, Any]]:
        return []

    def request_shutdown(self) -> None:
        raise AssertionError("a refused client must not stop the node")


@pytest.mark.parametrize("client", ["192.0.2.10", "10.0.0.5", "::ffff:192.0.2.10", None])
async def test_non_loopback_client_address_is_refused(client):
    # Unreachable through the daemon (it binds 127.0.0.1), so checked on the app itself: what
    # if someone serves it on another interface.
    app = build_app(_Node())
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/_p2p/shutdown",
             "raw_path": b"/_p2p/shutdown", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:9080")], "server": ("127.0.0.1", 9080),
             "client": (client, 40000) if client else None}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 403


# --- MCP_P2P_BOOTSTRAP_PEERS ---------------------------------------------------------------

GOOD = f"/ip4/127.0.0.1/tcp/9100/p2p/{HUB_ID}"


@pytest.mark.parametrize("bad, named", [
    ("/ip4/127.0.0.1/tcp/9100", "/ip4/127.0.0.1/tcp/9100"),
    (f"/ip4/127.0.0.1/udp/9100/p2p/{HUB_ID}", "/udp/9100"),
    (f"/ip4/300.1.1.1/tcp/9100/p2p/{HUB_ID}", "300.1.1.1"),
    (f"/ip4/127.0.0.1/tcp/0/p2p/{HUB_ID}", "tcp/0"),
    ("/ip4/127.0.0.1/tcp/9100/p2p/" + "Qm" + "x" * 5000, "/ip4/127.0.0.1/tcp/9100/p2p/Qmxxx"),
])
def test_malformed_bootstrap_env_entry_is_named_and_exits_2(tmp_path, bad, named):
    secret = "bootstrap-env-secret-canary"
    env = dict(os.environ, GITHUB_P2P_SECRET=secret, MCP_P2P_BOOTSTRAP_PEERS=f",\n {bad} ,")
    out = subprocess.run([sys.executable, "-m", "github_p2p.cli", "peer", "--cache-dir",
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert named in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr) < 2000  # a long entry is shortened, not echoed in full
    assert secret not in out.stderr + out.stdout
    assert list(tmp_path.iterdir()) == []  # refused before anything started


@pytest.mark.parametrize("bad, named", [
    ("/ip4/127.0.0.1/tcp/9100", "/ip4/127.0.0.1/tcp/9100"),
    ("/ip4/127.0.0.1/tcp/9100/p2p/" + "Qm" + "x" * 5000, "/ip4/127.0.0.1/tcp/9100/p2p/Qmxxx"),
])
def test_a_malformed_entry_among_good_ones_is_a_warning(tmp_path, bad, named):
    secret = "bootstrap-env-secret-canary"
    env = dict(os.environ, GITHUB_P2P_SECRET=secret,
               MCP_P2P_BOOTSTRAP_PEERS=f"{GOOD},\n {bad} ,{GOOD}")
    out = subprocess.run([sys.executable, "-m", "github_p2p.cli", "peer", "--cache-dir",
                          str(tmp_path), "--port", str(free_port()),
                          "--http-port", str(free_port()),
                          "--listen-host", "127.0.0.1", "--max-lifetime", "1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr  # started with the good entry, stopped on time
    warning = [line for line in out.stderr.splitlines() if "ignoring a bootstrap peer" in line]
    assert len(warning) == 1 and named in warning[0] and "Traceback" not in out.stderr
    assert len(warning[0]) < 2000  # a long entry is shortened, not echoed in full
    assert secret not in out.stderr + out.stdout
