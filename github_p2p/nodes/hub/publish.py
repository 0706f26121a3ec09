"""Publishing a bootstrap node's address as the ``MCP_P2P_BOOTSTRAP_PEERS`` repository secret.

GitHub takes an Actions secret only sealed to the repository's public key (a libsodium sealed
box, which PyNaCl gives us through libp2p): ``GET /repos/{o}/{r}/actions/secrets/public-key``,
seal, ``PUT /repos/{o}/{r}/actions/secrets/{name}`` with ``encrypted_value`` and ``key_id``. The
token needs the repository's "Secrets: write" permission (a fine-grained PAT) or ``repo`` scope.

The pure parts (repository names, which addresses to publish, sealing) are separate from the
two calls, which go through :class:`~github_p2p.client.GitHubClient` with no cache: a cached
public key could be a rotated one.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nacl.exceptions import CryptoError
from nacl.public import PublicKey, SealedBox

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.errors import ConfigError, GitHubHTTPError, GitHubP2PError
from github_p2p.p2p.addresses import parse_bootstrap_peers, tcp_multiaddr

__all__ = [
    "SECRET_NAME",
    "PublishedSecret",
    "announced_addresses",
    "bootstrap_secret_value",
    "parse_repository",
    "publish_secret",
    "publisher_from_env",
    "seal",
]

log = logging.getLogger(__name__)

#: The repository secret the composite action reads the bootstrap peers from (DESIGN).
SECRET_NAME = "MCP_P2P_BOOTSTRAP_PEERS"
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


@dataclass(frozen=True)
class PublishedSecret:
    """What :func:`publish_secret` did."""

    repository: str
    name: str
    created: bool
    #: The multiaddrs now in the secret (not secret in themselves, but kept out of reprs).
    addresses: tuple[str, ...] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """For the ready file: where it went, and whether it was created or updated."""
        return {"repository": self.repository, "name": self.name,
                "created": self.created, "addresses": len(self.addresses)}


def parse_repository(text: str) -> tuple[str, str]:
    """``OWNER/REPO`` as ``(owner, repo)``; :class:`ConfigError` when it is not one."""
    text = text.strip()
    if not _REPO.match(text) or text.endswith((".", "/.", "/..")):
        raise ConfigError(f"expected OWNER/REPO, got {text[:200]!r}")
    owner, repo = text.split("/")
    return owner, repo


def announced_addresses(multiaddrs: Sequence[str], public_ip: str) -> list[str]:
    """The node's multiaddrs on ``public_ip`` (the ones runners can dial)."""
    out = []
    for addr in multiaddrs:
        port = addr.split("/tcp/", 1)[-1].split("/", 1)[0]
        if port.isdigit() and addr.startswith(f"{tcp_multiaddr(public_ip, int(port))}/p2p/"):
            out.append(addr)
    return out


def bootstrap_secret_value(own: Sequence[str], others: Sequence[str] = ()) -> str:
    """The secret's value: this node's and the other nodes' multiaddrs, validated and sorted.

    Sorted, so two bootstrap nodes that each know the other publish the same value, whichever
    publishes last.
    """
    peers = parse_bootstrap_peers(",".join([*own, *others]))
    if not peers:
        raise ConfigError("no address to publish")
    return ",".join(sorted(peers))


def seal(public_key: str, value: str) -> str:
    """``value`` sealed to a base64 Curve25519 ``public_key``, base64, as GitHub expects."""
    try:
        key = PublicKey(base64.b64decode(public_key, validate=True))
    except (binascii.Error, ValueError, CryptoError) as exc:
        raise GitHubP2PError("the repository public key is not a base64 Curve25519 key") from exc
    return base64.b64encode(SealedBox(key).encrypt(value.encode())).decode()


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", ""))[:300]
    except (ValueError, AttributeError):
        return ""


def publish_secret(client: GitHubClient, repository: str, value: str, *,
                   name: str = SECRET_NAME) -> PublishedSecret:
    """Set the Actions secret ``name`` of ``repository`` to ``value`` (created or updated).

    Raises :class:`~github_p2p.errors.GitHubHTTPError` when GitHub refuses (the message says
    which permission is missing), :class:`~github_p2p.errors.GitHubP2PError` for a malformed
    public key. Nothing here logs ``value``.
    """
    owner, repo = parse_repository(repository)
    base = f"/repos/{quote(owner)}/{quote(repo)}/actions/secrets"
    resp = client.request("GET", f"{base}/public-key", headers=_HEADERS)
    if resp.status != 200:
        hint = " (the token needs Secrets: write on the repository)" \
            if resp.status in (401, 403, 404) else ""
        raise GitHubHTTPError(resp.status, _message(resp.body) + hint, f"{base}/public-key")
    try:
        key_doc = json.loads(resp.body)
        key_id, key = str(key_doc["key_id"]), str(key_doc["key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GitHubP2PError("GitHub answered the public-key request with no key") from exc
    body = {"encrypted_value": seal(key, value), "key_id": key_id}
    resp = client.request("PUT", f"{base}/{name}", headers=_HEADERS, json_body=body)
    if resp.status not in (201, 204):
        raise GitHubHTTPError(resp.status, _message(resp.body), f"{base}/{name}")
    return PublishedSecret(f"{owner}/{repo}", name, resp.status == 201,
                           tuple(value.split(",")))


def publisher_from_env(repository: str, public_ip: str | None, env: Mapping[str, str]
                       ) -> Callable[[Sequence[str]], dict[str, Any]]:
    """What ``bootstrap --publish-secret`` runs once the hub listens, checked up front.

    Raises :class:`ConfigError` now (before the hub starts) for a bad repository, a missing
    ``--public-ip`` or token. ``MCP_P2P_BOOTSTRAP_PEERS`` in the hub's environment names the
    *other* bootstrap nodes, published along with this one. The returned callable takes the
    hub's multiaddrs and returns a summary for the ready file; a refusal by GitHub is reported
    there and on stderr, and does not stop a hub that runners may already be using.
    """
    parse_repository(repository)
    if not public_ip:
        raise ConfigError("--publish-secret needs --public-ip: the address runners dial")
    try:
        ipaddress.ip_address(public_ip)
    except ValueError as exc:
        raise ConfigError(f"--public-ip must be an IP address, got {public_ip!r}") from exc
    settings = ClientSettings.from_env(env)
    if not settings.token:
        raise ConfigError("--publish-secret needs GITHUB_TOKEN or GH_TOKEN "
                          "(with Secrets: write on the repository)")
    others = parse_bootstrap_peers(env.get("MCP_P2P_BOOTSTRAP_PEERS", ""))

    def publish(multiaddrs: Sequence[str]) -> dict[str, Any]:
        own = announced_addresses(multiaddrs, public_ip)
        # The hub has no use for a cache of these two calls, and a stale public key would fail.
        plain = ClientSettings(api_url=settings.api_url, token=settings.token,
                               scope=settings.scope, user_agent=settings.user_agent)
        try:
            value = bootstrap_secret_value(own, others)
            with GitHubClient.in_process(plain) as client:
                done = publish_secret(client, repository, value)
        except GitHubP2PError as exc:
            print(f"github-p2p: could not publish {SECRET_NAME} to {repository}: {exc}",
                  file=sys.stderr, flush=True)
            return {"secret": {"repository": repository, "name": SECRET_NAME,
                               "published": False, "error": str(exc)[:500]}}
        verb = "created" if done.created else "updated"
        print(f"github-p2p: {verb} secret {SECRET_NAME} of {done.repository} "
              f"({len(done.addresses)} address(es))", file=sys.stderr, flush=True)
        return {"secret": {**done.summary(), "published": True}}

    return publish
