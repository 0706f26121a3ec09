"""The bootstrap node's bearer token for ``/mcp`` (``--mcp-token-file``), through the SDK's
OAuth resource-server support.

The token is a static secret the operator shares with their MCP clients; the node checks it in
constant time and never forwards it (tools use the node's own GitHub token). The verifier
reports each accepted token as issued for this server's resource URL, and the server is set up
with ``validate_token_resource``, so the SDK's own audience check is on.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

__all__ = ["BearerAuth", "StaticTokenVerifier"]

#: The principal every holder of the token acts as.
CLIENT_ID = "github-p2p-operator"


class StaticTokenVerifier:
    """Accepts exactly one bearer token (an SDK ``TokenVerifier``)."""

    def __init__(self, token: str, resource_url: str) -> None:
        self._token = token.encode()
        self._resource_url = resource_url

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access granted to ``token``, or ``None`` when it is not ours."""
        if not hmac.compare_digest(token.encode(), self._token):
            return None
        return AccessToken(token=token, client_id=CLIENT_ID, scopes=[],
                           resource=self._resource_url)


@dataclass(frozen=True)
class BearerAuth:
    """A token required on an MCP server whose public URL is ``resource_url``."""

    token: str = field(repr=False)
    resource_url: str

    def verifier(self) -> StaticTokenVerifier:
        """The SDK token verifier."""
        return StaticTokenVerifier(self.token, self.resource_url)

    def settings(self) -> AuthSettings:
        """The SDK auth settings: a resource server that checks each token's resource."""
        # There is no authorization server: the operator hands the token out. The server's
        # own URL stands in as the issuer the protected-resource metadata names.
        return AuthSettings(issuer_url=self.resource_url,  # type: ignore[arg-type]
                            resource_server_url=self.resource_url,  # type: ignore[arg-type]
                            validate_token_resource=True)
