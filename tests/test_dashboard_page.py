"""Serving the dashboard: package data, where each node kind serves it, and how.

The browser test (test_dashboard_browser.py) checks what the page shows; these check the
HTTP side against a fake node, in-process.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import httpx
import pytest

from github_p2p.nodes.endpoint import build_app


class FakeNode:
    """A NodeView with fixed answers."""

    def __init__(self, role: str = "bootstrap", status: str = "active") -> None:
        self.role = role
        self.status = status

    def health(self) -> dict[str, Any]:
        return {"status": self.status, "role": self.role, "peer_id": "12D3KooWfake"}

    def stats(self) -> dict[str, Any]:
        return {"role": self.role, "status": self.status, "requests": 3, "total_entries": 2,
                "bytes_stored": 3 * 1024 * 1024}

    def peers(self) -> list[dict[str, Any]]:
        return []

    def request_shutdown(self) -> None:
        pass


def client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    """Talks to ``app`` in-process, as a loopback client asking for ``host``."""
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}:9180")


def page_text() -> str:
    return resources.files("github_p2p.nodes").joinpath("static/dashboard.html").read_text("utf-8")


def test_the_page_is_package_data_and_self_contained() -> None:
    html = page_text()
    # No CDN, no external anything: nodes may be offline, and the CSP forbids it anyway.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "http://" not in html and "https://" not in html
    # Relative to where it is served, so "/" on a hub and "/_p2p/dashboard" on a runner work.
    assert 'fetch("/' not in html and "_p2p/stats" in html and "_p2p/peers" in html
    assert ".innerHTML" not in html  # peer-supplied text goes in with textContent only


async def test_hub_serves_the_dashboard_at_the_root() -> None:
    async with client(build_app(FakeNode())) as http:
        resp = await http.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert resp.text == page_text()
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-content-type-options"] == "nosniff"


async def test_runner_serves_it_beside_the_proxy() -> None:
    engine: Any = object()  # only its presence matters for routing; the proxy is not called
    async with client(build_app(FakeNode("runner"), engine=engine)) as http:
        resp = await http.get("/_p2p/dashboard")
        assert resp.status_code == 200 and resp.text == page_text()


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "attacker.localhost.evil"])
async def test_dashboard_refuses_non_loopback_hosts(host: str) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host.
    async with client(build_app(FakeNode()), host=host) as http:
        assert (await http.get("/")).status_code == 403
        assert (await http.get("/metrics")).status_code == 403


async def test_mcp_aliases_of_a_node_with_no_traffic() -> None:
    engine: Any = object()
    async with client(build_app(FakeNode("runner", "local-only"), engine=engine)) as http:
        peers = (await http.get("/api/mcp/peers")).json()
        cache = (await http.get("/api/mcp/cache/stats")).json()
    assert (peers["enabled"], peers["active"], peers["peer_count"], peers["peers"]) == \
        (False, False, 0, [])
    assert cache["total_size_mb"] == 3.0
    for name in ("hit_rate", "local_hits", "peer_hits", "misses", "api_calls_made",
                 "api_calls_saved"):
        assert cache[name] == 0, name
