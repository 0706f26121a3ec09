"""``python -m github_p2p.testing.simulator`` as a real process, and HTTPS with a test CA."""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from github_p2p.testing.simulator import GitHubSimulator, SimulatorClient, SimulatorConfig


def wait_for(path: Path, timeout: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, str] = json.loads(path.read_text())
            return data
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready" / "sim.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "github_p2p.testing.simulator",
            "--port",
            "0",
            "--rate-limit",
            "7",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_for(ready)["url"]
        assert process.stdout is not None
        assert process.stdout.readline().strip() == url
        response = requests.get(url + "/repos/o/r", headers={"Authorization": "token t"})
        assert response.headers["x-ratelimit-limit"] == "7"
        client = SimulatorClient(url)
        assert client.health() and client.upstream_count("/repos/o/r") == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not SimulatorClient(url, timeout=1).health()


def test_cli_rejects_bad_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "github_p2p.testing.simulator", "--latency", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "latency" in result.stderr


def _certificate(
    subject: str, issuer: x509.Name | None, signer: ec.EllipticCurvePrivateKey | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(signer or key, hashes.SHA256()), key


def _test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    ca_cert, ca_key = _certificate("simulator test CA", None, None)
    server_cert, server_key = _certificate("127.0.0.1", ca_cert.subject, ca_key)
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


def test_https_with_a_test_ca(tmp_path: Path) -> None:
    ca, cert, key = _test_ca(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with GitHubSimulator(SimulatorConfig(ssl_context=context)) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        with requests.Session() as http:
            for _ in range(2):  # the second request reuses the TLS connection
                # Per request: REQUESTS_CA_BUNDLE in the environment overrides Session.verify.
                response = http.get(sim.url + "/repos/o/r/releases?per_page=2", verify=str(ca))
                assert response.status_code == 200
            assert response.links["next"]["url"].startswith(sim.url)
        client = SimulatorClient(sim.url, verify=str(ca))
        assert client.upstream_count("/repos/o/r/releases") == 2
