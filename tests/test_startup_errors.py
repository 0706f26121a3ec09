"""What a daemon says when its configuration or its machine is wrong (issue 12, finding 8).

Each case is what a user meets at start: a busy HTTP port, a cache directory that is a file or
sits on a read-only file system, one mistyped entry among good bootstrap peers. The rules: a
configuration problem is one line on stderr and exit 2 (never a traceback), it says what is
wrong rather than "corrupt", nothing of the user's is moved aside unless it really is a damaged
store, and one bad bootstrap entry does not stop a daemon that has good ones.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from github_p2p.cache.localstore import LocalStore
from github_p2p.core.entry import CacheEntry
from github_p2p.errors import ConfigError
from github_p2p.testing.localfleet import LocalFleet, free_port

SECRET = "startup-errors-fleet-secret"
PID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = dict(os.environ, GITHUB_P2P_SECRET=SECRET)
    return subprocess.run([*prefix, sys.executable, "-m", "github_p2p.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_usage_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# --- a busy HTTP port -----------------------------------------------------------------------


def test_busy_http_port_of_a_runner_is_one_line_and_exit_2(tmp_path, busy_port):
    out = cli("peer", "--bootstrap", "", "--listen-host", "127.0.0.1", "--port", str(free_port()),
              "--http-port", str(busy_port), "--cache-dir", str(tmp_path))
    line = one_line_usage_error(out)
    assert f"127.0.0.1:{busy_port}" in line and "in use" in line


def test_busy_http_port_of_a_hub_is_one_line_and_exit_2(tmp_path, busy_port):
    out = cli("bootstrap", "--listen-host", "127.0.0.1", "--port", str(free_port()),
              "--http-port", str(busy_port), "--cache-dir", str(tmp_path))
    line = one_line_usage_error(out)
    assert f"127.0.0.1:{busy_port}" in line and "in use" in line


# --- an unusable cache directory ------------------------------------------------------------


def entry() -> CacheEntry:
    return CacheEntry(200, (), b"{}", 1.0, 61.0)


def test_a_file_where_the_store_should_be_is_named_and_left_alone(tmp_path):
    path = tmp_path / "c"
    path.write_bytes(b"the user's own file")
    with pytest.raises(ConfigError, match="not a directory") as info:
        LocalStore(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # nothing moved aside


def test_a_file_in_the_way_of_the_cache_directory_stops_the_daemon_with_one_line(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    out = cli("peer", "--bootstrap", "", "--listen-host", "127.0.0.1", "--port", str(free_port()),
              "--http-port", str(free_port()), "--cache-dir", str(blocker))
    line = one_line_usage_error(out)
    assert "not a directory" in line and "corrupt" not in line
    assert blocker.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def _read_only_prefix(mountpoint: Path) -> tuple[str, ...]:
    """A command prefix that runs its command with ``mountpoint`` a read-only file system (a
    private mount namespace: nothing outside the test sees it)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no user and mount namespaces here")
    script = 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"'
    return (unshare, "-rm", "sh", "-c", script, str(mountpoint))


def test_a_read_only_file_system_is_reported_as_such(tmp_path):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    prefix = _read_only_prefix(readonly)
    out = cli("peer", "--bootstrap", "", "--listen-host", "127.0.0.1", "--port", str(free_port()),
              "--http-port", str(free_port()), "--cache-dir", str(readonly / "cache"),
              prefix=prefix)
    line = one_line_usage_error(out)
    assert "read-only file system" in line.lower() and "corrupt" not in line


def test_a_good_store_on_a_read_only_file_system_is_not_moved_aside(tmp_path):
    cache_dir = tmp_path / "cache"
    store = LocalStore(cache_dir / "local")
    store.put("kept", entry(), keep_for=3600, tag="t")
    store.close()
    prefix = _read_only_prefix(cache_dir)
    # Bind the store read-only over itself: the same files, a read-only mount.
    script = ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"')
    unshare = prefix[0]
    out = cli("peer", "--bootstrap", "", "--listen-host", "127.0.0.1", "--port", str(free_port()),
              "--http-port", str(free_port()), "--cache-dir", str(cache_dir),
              prefix=(unshare, "-rm", "sh", "-c", script, str(cache_dir)))
    line = one_line_usage_error(out)
    assert "read-only file system" in line.lower() and "corrupt" not in line
    assert sorted(p.name for p in cache_dir.iterdir()) == ["local"]
    again = LocalStore(cache_dir / "local")
    assert again.get("kept") == entry() and again.corruptions == 0
    again.close()


# --- bootstrap peers: one bad entry among good ones -----------------------------------------


def test_split_keeps_the_good_entries_and_names_the_bad_ones():
    from github_p2p.p2p.addresses import split_bootstrap_peers

    good = f"/ip4/127.0.0.1/tcp/9100/p2p/{PID}"
    peers = split_bootstrap_peers(f"{good}, /ip4/999.1.1.1/tcp/x\n{good} hub.example:9100")
    assert peers.good == (good,)
    assert [entry for entry, _ in peers.bad] == ["/ip4/999.1.1.1/tcp/x", "hub.example:9100"]
    assert all(reason for _, reason in peers.bad)


def test_one_bad_bootstrap_entry_warns_and_the_daemon_joins_the_good_ones(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path, secret=SECRET) as fleet:
        hub = fleet.start_hub()
        peer = fleet.start_peer(bootstrap=f"{hub.multiaddr}, /ip4/999.1.1.1/tcp/x")
        assert peer.info["status"] == "active"
        log = peer.log_file.read_text()
        assert "warning" in log.lower() and "999.1.1.1" in log and "Traceback" not in log
        resp = requests.get(peer.endpoint + "/repos/octo/hello",
                            headers={"Authorization": "Bearer ghs_x"}, timeout=30)
        assert resp.status_code == 200


def test_only_bad_bootstrap_entries_still_exit_2(tmp_path):
    out = cli("peer", "--bootstrap", "/ip4/999.1.1.1/tcp/x, hub.example:9100",
              "--cache-dir", str(tmp_path))
    line = one_line_usage_error(out)
    assert "999.1.1.1" in line
