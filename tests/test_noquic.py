"""Regression tests of github_p2p.p2p.noquic: py-libp2p 0.8.1 imports its QUIC stack (and
aioquic) on ``import libp2p``; with the stand-ins, two real hosts still connect over TCP with a
network key and exchange data, and no QUIC code is loaded. Each case runs in a fresh interpreter,
because this test process imported libp2p long ago."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from multiaddr import Multiaddr

from github_p2p.errors import ConfigError
from github_p2p.p2p.noquic import QUICUnavailable, is_quic_multiaddr, keep_quic_unloaded

TWO_HOSTS = textwrap.dedent("""
    import json, sys
    if sys.argv[1] == "stand-ins":
        from github_p2p.p2p.noquic import keep_quic_unloaded
        assert keep_quic_unloaded()
    import trio
    from github_p2p.p2p.host import HostSettings, dial, running_host, set_safe_stream_handler
    from github_p2p.p2p.noquic import quic_loaded

    async def echo(stream):
        await stream.write(await stream.read(64))
        await stream.close()

    async def main():
        key = bytes(range(32))
        async with running_host(HostSettings(psk=key)) as server, \\
                running_host(HostSettings(psk=key)) as client:
            set_safe_stream_handler(server, "/test/echo/1.0.0", echo)
            await dial(client, server.multiaddrs[0], timeout=10)
            with trio.fail_after(10):
                stream = await client.host.new_stream(server.host.get_id(), ["/test/echo/1.0.0"])
                await stream.write(b"over tcp")
                reply = await stream.read(64)
        print(json.dumps({"reply": reply.decode(), "quic_loaded": quic_loaded(),
                          "aioquic": "aioquic" in sys.modules,
                          "quic_transport": "libp2p.transport.quic.transport" in sys.modules}))

    trio.run(main)
""")


def two_hosts(mode: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", TWO_HOSTS, mode], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_tcp_fleet_works_without_loading_quic() -> None:
    result = two_hosts("stand-ins")
    assert result["reply"] == "over tcp"
    assert result["quic_loaded"] is False
    assert result["aioquic"] is False


def test_defect_libp2p_loads_quic_on_import() -> None:
    # The defect the stand-ins remove: a TCP-only host drags in the QUIC transport and aioquic.
    # If this fails, py-libp2p stopped importing QUIC eagerly and noquic can go.
    result = two_hosts("real")
    assert result["reply"] == "over tcp"
    assert result["quic_loaded"] is True
    assert result["aioquic"] is True and result["quic_transport"] is True


def test_stand_ins_answer_truthfully_and_refuse_quic() -> None:
    assert is_quic_multiaddr(Multiaddr("/ip4/127.0.0.1/udp/4001/quic-v1")) is True
    assert is_quic_multiaddr(Multiaddr("/ip4/127.0.0.1/tcp/9100")) is False
    with pytest.raises(ConfigError, match="QUIC is not available"):
        QUICUnavailable()


def test_too_late_once_libp2p_is_loaded() -> None:
    # This process imported libp2p (and its QUIC package) already: the stand-ins cannot help.
    import libp2p  # noqa: F401

    assert keep_quic_unloaded() is False
