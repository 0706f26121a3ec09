"""How gh reads its environment: host, API base URL, token, ``GH_REPO`` (pure).

The wrapper serves a request only with the same host and token gh would use; when it cannot
tell (gh's own stored login, an unusual host), the real gh runs instead.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["api_base", "gh_host", "gh_repo", "gh_token", "same_api"]

_GITHUB = "github.com"


def gh_host(env: Mapping[str, str], flag: str | None = None) -> str:
    """``--hostname``, else ``GH_HOST``, else github.com."""
    return (flag or env.get("GH_HOST", "") or _GITHUB).strip().lower()


def _tenant(host: str) -> bool:
    return host == _GITHUB or host.endswith(".ghe.com")


def api_base(host: str) -> str | None:
    """The REST base URL gh uses for ``host``; ``None`` for hosts the wrapper leaves alone."""
    if host == _GITHUB:
        return "https://api.github.com"
    if host.endswith(".ghe.com"):
        return f"https://api.{host}"
    if not host or "localhost" in host or "/" in host:
        return None
    return f"https://{host}/api/v3"


def gh_token(env: Mapping[str, str], host: str) -> str | None:
    """The token gh takes from the environment for ``host`` (``None``: gh's stored login)."""
    names = (("GH_TOKEN", "GITHUB_TOKEN") if _tenant(host)
             else ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"))
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def gh_repo(env: Mapping[str, str]) -> tuple[str, str] | None:
    """``GH_REPO`` (``[HOST/]OWNER/REPO``) as (owner, repo)."""
    parts = [p for p in env.get("GH_REPO", "").strip().split("/") if p]
    if len(parts) in (2, 3):
        return parts[-2], parts[-1]
    return None


def same_api(a: str, b: str) -> bool:
    """Whether two API base URLs name the same API."""
    return a.rstrip("/").lower() == b.rstrip("/").lower()
