"""Actions secrets endpoints: public key, create/update with a sealed box, metadata, delete."""

from __future__ import annotations

from typing import Any

from github_p2p.testing.simulator.actions_secrets import StoredSecret, normalise_secret_name
from github_p2p.testing.simulator.entities import iso_time
from github_p2p.testing.simulator.repo_endpoints import repo_key
from github_p2p.testing.simulator.router import (
    Outcome,
    Route,
    RouteContext,
    RouteError,
    error_outcome,
    invalid,
)

__all__ = ["routes"]


def _metadata(secret: StoredSecret) -> dict[str, Any]:
    return {
        "name": secret.name,
        "created_at": iso_time(secret.created_at),
        "updated_at": iso_time(secret.updated_at),
    }


def _name(groups: dict[str, str]) -> str:
    name = normalise_secret_name(groups["name"])
    if name is None:
        raise RouteError(error_outcome(404, "Not Found"))
    return name


def public_key(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/actions/secrets/public-key``."""
    ctx.actor()
    vault = ctx.state.vault
    return Outcome(200, {"key_id": vault.key_id, "key": vault.public_key})


def list_secrets(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/actions/secrets`` (names and dates only)."""
    ctx.actor()
    secrets = ctx.state.vault.names(repo_key(groups))
    page, link = ctx.page(secrets)
    return Outcome(
        200, {"total_count": len(secrets), "secrets": [_metadata(s) for s in page]}, link=link
    )


def get_secret(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/actions/secrets/{name}``: metadata, never the value."""
    ctx.actor()
    secret = ctx.state.vault.get(repo_key(groups), _name(groups))
    if secret is None:
        raise RouteError(error_outcome(404, "Not Found"))
    return Outcome(200, _metadata(secret), last_modified=secret.updated_at)


def put_secret(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``PUT /repos/{owner}/{repo}/actions/secrets/{name}``: 201 created, 204 updated."""
    ctx.actor()
    name = normalise_secret_name(groups["name"])
    if name is None:
        raise invalid(
            "Secret names can only contain alphanumeric characters or underscores, "
            "must not start with a number, and must not start with GITHUB_."
        )
    data = ctx.json_object()
    vault = ctx.state.vault
    encrypted = data.get("encrypted_value")
    key_id = data.get("key_id")
    if not isinstance(encrypted, str) or not isinstance(key_id, str):
        raise invalid('"encrypted_value" and "key_id" must both be supplied as strings.')
    if key_id != vault.key_id:
        raise invalid(f"key_id {key_id!r} does not match the repository public key.")
    plaintext = vault.open_sealed(encrypted)
    if plaintext is None:
        raise invalid("encrypted_value could not be decrypted with the repository key.")
    created = vault.store(repo_key(groups), name, plaintext, ctx.now)
    return Outcome(201, {}) if created else Outcome(204)


def delete_secret(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``DELETE /repos/{owner}/{repo}/actions/secrets/{name}`` (204)."""
    ctx.actor()
    if not ctx.state.vault.delete(repo_key(groups), _name(groups)):
        raise RouteError(error_outcome(404, "Not Found"))
    return Outcome(204)


def routes() -> list[Route]:
    """Secret routes; ``public-key`` before ``{name}``."""
    secrets = "/repos/{owner}/{repo}/actions/secrets"
    return [
        Route.of("GET", f"{secrets}/public-key", public_key),
        Route.of("GET", secrets, list_secrets),
        Route.of("GET", f"{secrets}/{{name}}", get_secret),
        Route.of("PUT", f"{secrets}/{{name}}", put_secret),
        Route.of("DELETE", f"{secrets}/{{name}}", delete_secret),
    ]
