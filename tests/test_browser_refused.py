"""A web page cannot use a runner's daemon (issue 12, finding 1), with real processes.

A page in a browser on the runner could reach the daemon's predictable loopback port: send a
"simple" cross-site POST (no preflight) that the daemon would forward to GitHub with its own
token, read answers GitHub marks ``Access-Control-Allow-Origin: *``, or stop the daemon. The
endpoint refuses any request that carries ``Origin`` or a cross-site ``Sec-Fetch-Site``, strips
``Access-Control-*`` from what it forwards, and requires a header on ``POST /_p2p/*`` that a
page cannot send without a (refused) preflight. The last test drives real Chromium.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.simulator import GitHubSimulator

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TOKEN = "ghs_csrfvictim0001"


@pytest.fixture
def peer(sim: GitHubSimulator, tmp_path: Path) -> Iterator[NodeProcess]:
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        # The daemon's own token: the one a forged request would spend.
        yield fleet.start_peer(bootstrap="", env={"GITHUB_TOKEN": TOKEN})


def alive(peer: NodeProcess) -> bool:
    try:
        return requests.get(peer.endpoint + "/_p2p/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_a_cross_site_request_never_reaches_github(sim, peer, headers):
    answer = requests.post(peer.endpoint + "/repos/octo/hello/issues", data='{"title": "x"}',
                           headers={"Content-Type": "text/plain", **headers}, timeout=10)
    assert answer.status_code == 403
    read = requests.get(peer.endpoint + "/repos/octo/hello", headers=headers, timeout=10)
    assert read.status_code == 403 and "access-control-allow-origin" not in read.headers
    assert sim.records() == []


def test_a_same_origin_tool_is_still_served_and_gets_no_cors_headers(sim, peer):
    answer = requests.get(peer.endpoint + "/repos/octo/hello",
                          headers={"Sec-Fetch-Site": "none"}, timeout=10)
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    # The simulator (like GitHub) did send them.
    direct = requests.get(sim.url + "/repos/octo/hello", timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert direct.headers["Access-Control-Allow-Origin"] == "*"


def test_control_posts_need_the_control_header(peer):
    for origin in ({}, {"Origin": "http://evil.example"}):
        refused = requests.post(peer.endpoint + "/_p2p/shutdown", headers=origin, timeout=10)
        assert refused.status_code == 403
        assert alive(peer)
    accepted = requests.post(peer.endpoint + "/_p2p/shutdown", headers={CONTROL_HEADER: "1"},
                             timeout=10)
    assert accepted.status_code == 200
    assert peer.process.wait(15) == 0


EVIL_PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
const daemon = "http://127.0.0.1:%(port)d";
const out = [];
async function attempt(name, url, init) {
  try { const r = await fetch(url, init); out.push(name + ":" + r.status + ":" +
        (r.type === "opaque" ? "opaque" : (await r.text()).slice(0, 40))); }
  catch (e) { out.push(name + ":error"); }
}
(async () => {
  await attempt("issue", daemon + "/repos/octo/hello/issues",
                {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                 body: '{"title": "csrf"}'});
  await attempt("read", daemon + "/repos/octo/hello", {});
  await attempt("stop", daemon + "/_p2p/shutdown", {method: "POST", mode: "no-cors"});
  document.getElementById("out").textContent = "done " + out.join(" ");
})();
</script></body></html>"""


def test_a_page_in_real_chromium_cannot_use_the_daemon(sim, peer):
    if not CHROMIUM.exists():
        subprocess.run([str(ROOT / "scripts" / "ensure-chromium")], check=True, timeout=600)
    from playwright.sync_api import sync_playwright

    port = int(peer.endpoint.rsplit(":", 1)[1])
    page_html = (EVIL_PAGE % {"port": port}).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page_html)))
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                # "localhost" is another site than the daemon's 127.0.0.1.
                page.goto(f"http://localhost:{server.server_address[1]}/")
                page.wait_for_function(
                    "document.getElementById('out').textContent.startsWith('done')",
                    timeout=20_000)
                result = page.inner_text("#out")
            finally:
                browser.close()
    finally:
        server.shutdown()
    assert "read:error" in result, result  # the page could not read an answer
    assert sim.records() == [], result  # nothing reached GitHub with the daemon's token
    assert alive(peer), result  # and the daemon still runs
