"""The ``/_simulator/*`` control plane: how other processes steer and read a simulator.

Control calls are never recorded, never delayed and never counted against a rate limit.
"""

from __future__ import annotations

import json
from typing import Any

from github_p2p.errors import ConfigError
from github_p2p.testing.simulator.oidc import OidcProvider
from github_p2p.testing.simulator.service import SimulatedGitHub

__all__ = ["CONTROL_PREFIX", "handle_control"]

CONTROL_PREFIX = "/_simulator"


def _object(body: bytes) -> dict[str, Any]:
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _int(data: dict[str, Any], name: str, default: int) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    return value


def handle_control(
    service: SimulatedGitHub, method: str, path: str, body: bytes, *,
    oidc: OidcProvider | None = None, base_url: str = "",
) -> tuple[int, Any]:
    """Carry out one control call; returns the status and a JSON-ready answer.

    ``POST /oidc/jobs`` (``{"repository": "o/r", "lifetime": 300}``) registers an Actions job
    and answers the ``ACTIONS_ID_TOKEN_REQUEST_*`` environment of its runner.
    """
    route = path.split("?", 1)[0][len(CONTROL_PREFIX) :]
    try:
        if method == "GET" and route == "/health":
            return 200, {"ok": True}
        if method == "GET" and route == "/requests":
            return 200, [record.to_json() for record in service.records()]
        if method != "POST":
            return 404, {"message": "Not Found"}
        data = _object(body)
        if route == "/reset":
            if data.get("records", True):
                service.reset_records()
            if data.get("rate_limits", False):
                service.reset_rate_limits()
            if data.get("faults", False):
                service.clear_faults()
        elif route == "/resources":
            if not isinstance(data.get("path"), str) or "body" not in data:
                raise ValueError("resources needs a string path and a body")
            service.set_resource(data["path"], data["body"])
        elif route == "/faults":
            kind = data.get("kind")
            count = _int(data, "count", 1)
            if kind == "5xx":
                service.fail_next(count, status=_int(data, "status", 502))
            elif kind == "secondary":
                service.secondary_limit_next(
                    count,
                    retry_after=_int(data, "retry_after", 1),
                    status=_int(data, "status", 403),
                )
            else:
                raise ValueError('kind must be "5xx" or "secondary"')
        elif route == "/oidc/jobs" and oidc is not None:
            repository = data.get("repository")
            lifetime = data.get("lifetime", 300)
            if not isinstance(repository, str) or "/" not in repository:
                raise ValueError("repository must be owner/repo")
            if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool):
                raise ValueError("lifetime must be a number")
            return 200, oidc.job(base_url, repository, lifetime=float(lifetime))
        elif route == "/latency":
            seconds = data.get("seconds")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
                raise ValueError("seconds must be a number")
            service.set_latency(float(seconds))
        else:
            return 404, {"message": "Not Found"}
    except (ValueError, ConfigError) as exc:
        return 400, {"message": str(exc)}
    return 200, {"ok": True}
