"""Primary rate-limit budgets, shaped like GitHub's (pure: the caller passes the time in).

REST (``core``) and GraphQL (``graphql``) budgets are separate, as on GitHub; a REST request
spends one, a GraphQL request the points its query costs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["INSTALLATION_PREFIX", "Budget", "BudgetKey", "RateLimiter", "RateStatus"]

#: Installation tokens (``GITHUB_TOKEN`` in Actions) start with this and share a repo's budget.
INSTALLATION_PREFIX = "ghs_"


@dataclass(frozen=True)
class BudgetKey:
    """Whose budget a request spends (a repository, a token, or an unauthenticated client) and
    which resource (``core`` or ``graphql``)."""

    kind: str
    ident: str
    resource: str = "core"


@dataclass(frozen=True)
class Budget:
    """A budget key with its hourly limit and the name GitHub's 403 message gives it."""

    key: BudgetKey
    limit: int
    owner_description: str


@dataclass(frozen=True)
class RateStatus:
    """The state of one budget, as the ``x-ratelimit-*`` headers tell it."""

    limit: int
    used: int
    reset: int
    resource: str = "core"

    @property
    def remaining(self) -> int:
        """Requests left in this window."""
        return max(0, self.limit - self.used)

    def headers(self) -> list[tuple[str, str]]:
        """The ``x-ratelimit-*`` response headers."""
        return [
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(self.reset)),
            ("x-ratelimit-used", str(self.used)),
            ("x-ratelimit-resource", self.resource),
        ]


def _small_id(text: str) -> int:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 90_000_000 + 1_000_000


class RateLimiter:
    """Fixed windows that open on a budget's first use and last ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._windows: dict[BudgetKey, tuple[int, int]] = {}
        # An installation token belongs to one repository; calls without an owner/repo in the
        # path (``/rate_limit``, ``/user``) still spend that repository's budget.
        self._installations: dict[str, str] = {}

    def budget_for(
        self,
        token: str,
        repo: str | None,
        client: str,
        *,
        user_limit: int,
        installation_limit: int,
        anonymous_limit: int,
        resource: str = "core",
    ) -> Budget:
        """Which budget a request with this token, path repository and client address spends."""
        if not token:
            return Budget(
                BudgetKey("client", client, resource),
                anonymous_limit,
                f"{client}. (But here's the good news: Authenticated requests get a higher rate "
                "limit. Check out the documentation for more details.)",
            )
        if token.startswith(INSTALLATION_PREFIX):
            if repo is not None:
                self._installations.setdefault(token, repo)
            else:
                repo = self._installations.get(token)
            if repo is not None:
                return Budget(
                    BudgetKey("repository", repo, resource),
                    installation_limit,
                    f"installation ID {_small_id(repo)}",
                )
            return Budget(
                BudgetKey("token", token, resource),
                installation_limit,
                f"installation ID {_small_id(token)}",
            )
        key = BudgetKey("token", token, resource)
        return Budget(key, user_limit, f"user ID {_small_id(token)}")

    def status(self, budget: Budget, now: float) -> RateStatus:
        """The budget's state at ``now``, opening a new window if the last one has expired."""
        reset, used = self._current(budget.key, now)
        return RateStatus(budget.limit, min(used, budget.limit), reset, budget.key.resource)

    def try_consume(self, budget: Budget, now: float, cost: int = 1) -> tuple[bool, RateStatus]:
        """Spend ``cost`` points if that many are left; whether they were spent, and the state."""
        reset, used = self._current(budget.key, now)
        resource = budget.key.resource
        if used + cost > budget.limit:
            return False, RateStatus(budget.limit, min(used, budget.limit), reset, resource)
        self._windows[budget.key] = (reset, used + cost)
        return True, RateStatus(budget.limit, used + cost, reset, resource)

    def reset(self) -> None:
        """Forget every window (every budget is full again)."""
        self._windows.clear()

    def _current(self, key: BudgetKey, now: float) -> tuple[int, int]:
        window = self._windows.get(key)
        if window is None or now >= window[0]:
            window = (int(now + self._window), 0)
            self._windows[key] = window
        return window
