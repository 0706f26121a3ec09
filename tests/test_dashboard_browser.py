"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

A live bootstrap node with two connected runners (real processes, ``LocalFleet``) and a
local-only runner serve some traffic from the simulator; the page must then show exactly the
numbers of ``/_p2p/stats`` and ``/_p2p/peers``, and say clearly when the fleet is disabled,
degraded or unreachable. Chromium is installed by ``scripts/ensure-chromium`` when missing
(never ``playwright install``). ``GITHUB_P2P_UPDATE_SCREENSHOT=1`` refreshes docs/dashboard.png.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REPO = "octo/hello"
#: Keys the hub's page must show, by the brief: cache, fleet totals, fills and waiters.
HUB_KEYS = {"total_entries", "bytes_stored", "fleet_hit_rate", "fleet_local_hits",
            "fleet_peer_hits", "fleet_api_calls_made", "fleet_api_calls_saved", "fleet_requests",
            "fills_in_flight", "waiters", "connected_peers"}
RUNNER_KEYS = {"total_entries", "bytes_stored", "hit_rate", "local_hits", "peer_hits",
               "misses", "api_calls_made", "api_calls_saved", "requests"}


def ensure_chromium() -> None:
    if not CHROMIUM.exists():
        subprocess.run([str(ROOT / "scripts" / "ensure-chromium")], check=True, timeout=600)
    assert CHROMIUM.exists(), "scripts/ensure-chromium did not provide /usr/bin/chromium"


# --- the page's formatting rules, in Python ----------------------------------------------------


def shown(value: Any, kind: str) -> str:
    """What the page prints for ``value`` (see fmt() in dashboard.html)."""
    if value is None:
        return "—"
    if kind == "rate":  # Number.toFixed rounds the exact double half up
        return f"{Decimal(value * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)} %"
    if kind == "bytes":
        if value < 1024:
            return f"{value} B"
        scaled, unit = value / 1024, 0
        units = ["KiB", "MiB", "GiB", "TiB"]
        while scaled >= 1024 and unit < len(units) - 1:
            scaled, unit = scaled / 1024, unit + 1
        return f"{Decimal(scaled).quantize(Decimal('0.1'), ROUND_HALF_UP)} {units[unit]}"
    return f"{value:,}"


def test_formatting_rules_match_the_examples() -> None:
    assert shown(1234567, "int") == "1,234,567"
    assert shown(0.5385, "rate") == "53.8 %" and shown(1.0, "rate") == "100.0 %"
    assert shown(61440, "bytes") == "60.0 KiB" and shown(1000, "bytes") == "1000 B"
    assert shown(None, "int") == "—"


# --- fixtures ------------------------------------------------------------------------------------


class Fleet:
    def __init__(self, hub: NodeProcess, runners: list[NodeProcess], alone: NodeProcess) -> None:
        self.hub, self.runners, self.alone = hub, runners, alone


def get(url: str) -> Any:
    return requests.get(url, timeout=10).json()


def settle(fleet: Fleet) -> dict[str, Any]:
    """Hub stats once every runner's latest counters reached it, and nothing moves any more."""
    deadline = time.monotonic() + 20
    previous = None
    while time.monotonic() < deadline:
        total = sum(get(r.endpoint + "/_p2p/stats")["requests"] for r in fleet.runners)
        stats = get(fleet.hub.endpoint + "/_p2p/stats")
        if stats["fleet_requests"] == total and stats == previous:
            return stats  # type: ignore[no-any-return]
        previous = stats
        time.sleep(0.5)
    raise AssertionError(f"the hub's fleet totals never settled: {previous}")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    ensure_chromium()
    config = SimulatorConfig(rate_limit=100_000, latency=0.02)
    with GitHubSimulator(config) as sim, \
            LocalFleet(sim.url, workdir=tmp_path_factory.mktemp("fleet")) as local:
        hub = local.start_hub(timeout=60)
        runners = [local.start_peer(name=f"runner-{i}", wait=False) for i in range(2)]
        alone = local.start_peer(name="runner-alone", bootstrap="", wait=False)
        for node in [*runners, alone]:
            node.wait_ready(90)
        assert [r.info["status"] for r in runners] == ["active", "active"]

        def work(index: int) -> None:
            token = f"ghs_runner{index}_token"
            paths = [f"/repos/{REPO}/contents/src/file{i}.py" for i in range(12)]
            paths += [f"/repos/{REPO}", f"/repos/{REPO}/releases", f"/repos/{REPO}/issues/99999"]
            for path in paths + paths[:3]:  # the repeats are local hits
                requests.get(runners[index].endpoint + path, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(work, range(2)))
        requests.get(alone.endpoint + f"/repos/{REPO}", timeout=60,
                     headers={"Authorization": "Bearer ghs_alone"})
        yield Fleet(hub, runners, alone)


@pytest.fixture(scope="module")
def browser(fleet: Fleet) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Any, url: str, state: str) -> Any:
    """A page at ``url`` once it rendered at least once in ``state``; no console errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector(f'body[data-state="{state}"]:not([data-updates="0"])',
                           timeout=15_000)
    page.errors = errors
    return page


def shown_stats(page: Any) -> dict[str, tuple[str, str, str]]:
    """``{key: (text, data-value, data-kind)}`` of every number on the page."""
    out = {}
    for element in page.query_selector_all("[data-stat]"):
        key = element.get_attribute("data-stat")
        assert key not in out, f"{key} shown twice"
        out[key] = (element.inner_text(), element.get_attribute("data-value"),
                    element.get_attribute("data-kind"))
    return out


def assert_page_equals(page: Any, stats: dict[str, Any], required: set[str]) -> None:
    numbers = shown_stats(page)
    assert required <= set(numbers), required - set(numbers)
    for key, (text, raw, kind) in numbers.items():
        value = stats[key]
        assert raw == ("" if value is None else str(value)) or float(raw) == value, key
        assert text == shown(value, kind), (key, text, value)
    assert not page.errors


# --- the tests -----------------------------------------------------------------------------------


def test_hub_dashboard_shows_exactly_the_hub_stats(fleet: Fleet, browser: Any,
                                                   tmp_path: Path) -> None:
    stats = settle(fleet)
    assert stats["fleet_requests"] == 36 and stats["fleet_api_calls_made"] >= 15
    page = open_page(browser, fleet.hub.endpoint + "/", "ok")
    assert_page_equals(page, stats, HUB_KEYS)
    assert get(fleet.hub.endpoint + "/_p2p/stats") == stats  # it did not move meanwhile

    peers = {p["peer_id"]: p for p in get(fleet.hub.endpoint + "/_p2p/peers")["peers"]}
    rows = page.query_selector_all("#peer-rows tr[data-peer-id]")
    assert {r.get_attribute("data-peer-id") for r in rows} == set(peers) == \
        {r.info["peer_id"] for r in fleet.runners}
    for row in rows:
        peer = peers[row.get_attribute("data-peer-id")]
        assert row.query_selector('[data-field="runner_name"]').inner_text() == \
            peer["runner_name"]
        assert row.query_selector('[data-field="role"]').inner_text() == "runner"
        assert row.query_selector('[data-field="arch"]').inner_text() == peer["arch"]
        for key, kind in (("requests", "int"), ("api_calls_made", "int"),
                          ("api_calls_saved", "int"), ("hit_rate", "rate")):
            cell = row.query_selector(f'[data-peer-stat="{key}"]').inner_text()
            assert cell == shown(peer["stats"][key], kind), (key, cell)
    assert page.inner_text("#badge") == "active"

    target = ROOT / "docs" / "dashboard.png" \
        if os.environ.get("GITHUB_P2P_UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    page.close()


def test_runner_dashboards_active_and_disabled(fleet: Fleet, browser: Any) -> None:
    runner = fleet.runners[0]
    page = open_page(browser, runner.endpoint + "/_p2p/dashboard", "ok")
    assert_page_equals(page, get(runner.endpoint + "/_p2p/stats"), RUNNER_KEYS)
    rows = page.query_selector_all("#peer-rows tr[data-peer-id]")
    assert [r.get_attribute("data-peer-id") for r in rows] == [fleet.hub.info["peer_id"]]
    assert rows[0].query_selector('[data-field="state"]').inner_text() == "connected"
    page.close()

    page = open_page(browser, fleet.alone.endpoint + "/_p2p/dashboard", "disabled")
    assert "disabled" in page.inner_text("#banner")
    assert_page_equals(page, get(fleet.alone.endpoint + "/_p2p/stats"), RUNNER_KEYS)
    page.close()


def test_losing_the_hub_shows_error_and_degraded(fleet: Fleet, browser: Any) -> None:
    # Runs last in this module: it stops the hub.
    hub_page = open_page(browser, fleet.hub.endpoint + "/?refresh=0.5", "ok")
    runner_page = open_page(browser, fleet.runners[0].endpoint + "/_p2p/dashboard?refresh=0.5",
                            "ok")
    fleet.hub.stop()
    hub_page.wait_for_selector('body[data-state="error"]', timeout=15_000)
    assert "Cannot read the node's status" in hub_page.inner_text("#banner")
    assert hub_page.inner_text("#badge") == "unreachable"
    # The last numbers stay on screen, marked stale, rather than vanishing.
    assert shown_stats(hub_page) and hub_page.query_selector("#sections.stale")
    runner_page.wait_for_selector('body[data-state="degraded"]', timeout=15_000)
    assert "No bootstrap node is reachable" in runner_page.inner_text("#banner")
    state = runner_page.query_selector('#peer-rows [data-field="state"]').inner_text()
    assert state.startswith("disconnected")
