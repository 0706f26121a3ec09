"""Shared by the tests that drive gh (real or stand-in) against the simulator over HTTPS.

gh talks to a non-github.com host at ``https://HOST/api/v3/`` (GraphQL at ``/api/graphql``) with
``GH_ENTERPRISE_TOKEN``; a throwaway CA signs the simulator's certificate for 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

#: Debian's gh (scripts/ensure-gh), never a shim that may be first on PATH.
REAL_GH = shutil.which("gh", path="/usr/bin:/usr/local/bin:/bin")
JQ = shutil.which("jq", path="/usr/bin:/usr/local/bin:/bin")
needs_real_gh = pytest.mark.skipif(REAL_GH is None,
                                   reason="gh is not installed (scripts/ensure-gh)")


def certificate(subject: str, issuer: x509.Name | None,
                signer: ec.EllipticCurvePrivateKey | None
                ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA certificate (no issuer) or a 127.0.0.1 server certificate signed by ``signer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                              critical=True))
    if issuer is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(signer or key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its PEM file) and a server context for 127.0.0.1 signed by it."""
    directory = tmp_path_factory.mktemp("ca")
    ca_cert, ca_key = certificate("github-p2p test CA", None, None)
    cert, key = certificate("127.0.0.1", ca_cert.subject, ca_key)
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return ca_path, context


@pytest.fixture
def https_sim(tls: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[GitHubSimulator]:
    """The simulator over HTTPS; the in-process client (requests) verifies with
    ``REQUESTS_CA_BUNDLE``, which this machine sets to the system bundle."""
    ca, context = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    with GitHubSimulator(SimulatorConfig(ssl_context=context, release_count=5)) as sim:
        yield sim


def gh_environment(sim: GitHubSimulator, ca: Path, home: Path, token: str) -> dict[str, str]:
    """What gh needs to talk to the simulator, and nothing from the caller's environment."""
    return {
        "PATH": f"/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "GH_HOST": sim.url.split("://", 1)[1],
        "GH_ENTERPRISE_TOKEN": token,
        "GH_CONFIG_DIR": str(home / "gh-config"),
        "GH_NO_UPDATE_NOTIFIER": "1",
        "GH_PROMPT_DISABLED": "1",
        "SSL_CERT_FILE": str(ca),
        "REQUESTS_CA_BUNDLE": str(ca),
        "GITHUB_P2P_CACHE_DIR": str(home / "cache"),
    }
