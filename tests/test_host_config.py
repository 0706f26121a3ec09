"""Host settings, bootstrap-peer parsing and identity files: no network involved."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from libp2p import generate_peer_id_from
from libp2p.crypto.secp256k1 import create_new_key_pair as create_secp256k1_key_pair

from github_p2p.errors import ConfigError
from github_p2p.p2p.host import (
    ALL_WORKAROUNDS,
    HostSettings,
    Workaround,
    load_or_create_identity,
    parse_bootstrap_peers,
)

PID_A = "12D3KooWRrZfR85Bm6HtSTj12Ye69jfeeo8m3D8oKmSSjLRGae34"
PID_B = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
HUB_A = f"/ip4/203.0.113.7/tcp/9100/p2p/{PID_A}"
HUB_B = f"/dns4/hub.example.org/tcp/9100/p2p/{PID_B}"
HUB_C = f"/ip6/2001:db8::1/tcp/9100/p2p/{PID_A}"


# --- parse_bootstrap_peers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"{HUB_A},{HUB_B},{HUB_C}",
        f"{HUB_A} {HUB_B}\t{HUB_C}",
        f"\n{HUB_A}\n{HUB_B}\r\n{HUB_C}\n",
        f" {HUB_A} ,\n {HUB_B},, {HUB_C} , ",
    ],
    ids=["commas", "spaces", "newlines", "mixed"],
)
def test_bootstrap_peers_split_on_commas_spaces_and_newlines(text: str) -> None:
    assert parse_bootstrap_peers(text) == [HUB_A, HUB_B, HUB_C]


def test_bootstrap_peers_empty_and_duplicates() -> None:
    assert parse_bootstrap_peers("") == []
    assert parse_bootstrap_peers(" ,\n ") == []
    assert parse_bootstrap_peers(f"{HUB_A},{HUB_A} {HUB_B}") == [HUB_A, HUB_B]


def test_bootstrap_peers_accept_dns_variants() -> None:
    for proto in ("dns", "dns4", "dns6"):
        addr = f"/{proto}/hub.example.org/tcp/9100/p2p/{PID_A}"
        assert parse_bootstrap_peers(addr) == [addr]


@pytest.mark.parametrize(
    "bad",
    [
        "/ip4/203.0.113.7/tcp/9100",  # no peer id
        f"/ip4/203.0.113.7/udp/9100/p2p/{PID_A}",  # not TCP
        f"/ip4/203.0.113.7/tcp/0/p2p/{PID_A}",  # port 0 cannot be dialled
        "/ip4/203.0.113.7/tcp/70000/p2p/" + PID_A,  # port out of range
        "/ip4/203.0.113.7/tcp/9100/p2p/not-a-peer-id",
        f"/ip4/999.0.113.7/tcp/9100/p2p/{PID_A}",
        f"/p2p/{PID_A}",  # no transport address
        f"/ip4/203.0.113.7/tcp/9100/ws/p2p/{PID_A}",  # extra protocol
        "hub.example.org:9100",
    ],
)
def test_malformed_bootstrap_peer_is_named(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bootstrap_peers(f"{HUB_A}, {bad}\n{HUB_B}")
    assert repr(bad) in str(info.value)
    assert HUB_A not in str(info.value)


# --- HostSettings -----------------------------------------------------------------------


def test_default_settings_apply_every_workaround() -> None:
    settings = HostSettings()
    assert settings.workarounds == ALL_WORKAROUNDS == frozenset(Workaround)
    assert settings.listen_host == "127.0.0.1"
    assert settings.port == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"listen_host": "localhost"},
        {"listen_host": "0.0.0.0/0"},
        {"port": -1},
        {"port": 65536},
        {"psk": b"short"},
        {"psk": b"x" * 64},
        {"identity_file": "  "},
        {"announce_host": "bad host!"},
        {"handshake_timeout": 0},
        {"handshake_timeout": float("nan")},
        {"close_timeout": -1.0},
        {"max_connections": 0},
        {"peerstore_max_peers": 0},
        {"peerstore_cleanup_interval": 0},
        {"workarounds": frozenset({"fast-dial"})},
    ],
)
def test_invalid_settings_raise_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HostSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_repr_hides_the_network_key() -> None:
    psk = bytes(range(32))
    text = repr(HostSettings(psk=psk, listen_host="::", announce_host="hub.example.org"))
    assert psk.hex() not in text
    assert "psk" not in text


# --- identity files ---------------------------------------------------------------------


def test_identity_is_created_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "state" / "hub.key"
    first = load_or_create_identity(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["hub.key"]  # no temp file left behind
    second = load_or_create_identity(str(path))
    assert generate_peer_id_from(first) == generate_peer_id_from(second)
    assert first.private_key.to_bytes() == second.private_key.to_bytes()


def test_identity_file_is_libp2p_compatible(tmp_path: Path) -> None:
    from libp2p.identity_utils import load_identity

    path = tmp_path / "hub.key"
    ours = load_or_create_identity(path)
    assert generate_peer_id_from(load_identity(path)) == generate_peer_id_from(ours)


def test_concurrent_creation_yields_one_identity(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        ids.append(str(generate_peer_id_from(load_or_create_identity(path))))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    assert ids[0] == str(generate_peer_id_from(load_or_create_identity(path)))


@pytest.mark.parametrize(
    "content",
    [b"", b"not a key", b"\x08\x01\x12\x05short", os.urandom(68)],
    ids=["empty", "text", "truncated", "random"],
)
def test_corrupt_identity_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hub.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="corrupt"):
        load_or_create_identity(path)
    assert path.read_bytes() == content  # never silently replaced: the peer id would change


def test_identity_of_another_key_type_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    path.write_bytes(create_secp256k1_key_pair().private_key.serialize())
    with pytest.raises(ConfigError, match="non-Ed25519"):
        load_or_create_identity(path)


def test_identity_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_or_create_identity(tmp_path)


def test_identity_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot create"):
        load_or_create_identity(blocker / "hub.key")
