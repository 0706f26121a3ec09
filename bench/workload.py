"""The fleet benchmark's workload: which resources each runner asks for, and when (pure).

A job of a CI matrix runs the same steps as its siblings, so some resources (the repository,
the latest release, the open pull requests) are asked for by every runner, many times, while
others (one file at one path) are asked for by a few. Each runner makes ``requests`` draws from
a Zipf law over ``resources`` resources ranked by popularity: rank ``r`` has weight ``1 / r**s``.
Runner ``i`` draws the same sequence whatever the fleet size, so the N=5 fleet runs the first
five jobs of the N=20 fleet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from github_p2p.cli.demo import RunnerPlan
from github_p2p.errors import ConfigError

__all__ = ["Workload", "catalogue", "runner_distinct", "unique_resources", "zipf_weights"]

#: The most popular resources of a repository, most popular first: single objects (which carry
#: ``Last-Modified``, so any token can revalidate them) mixed with lists (which do not).
_HEAD = ("", "/releases/latest", "/pulls", "/actions/runs", "/commits/main", "/releases",
         "/issues", "/actions/runners")


def catalogue(repo: str, count: int) -> list[str]:
    """``count`` read-only resources of ``repo``, most popular first."""
    head = [f"/repos/{repo}{suffix}" for suffix in _HEAD]
    files = [f"/repos/{repo}/contents/src/module{i}.py" for i in range(max(0, count - len(head)))]
    return (head + files)[:count]


def zipf_weights(count: int, skew: float) -> list[float]:
    """Zipf weights ``1 / rank**skew`` for ranks 1..count."""
    return [1.0 / rank**skew for rank in range(1, count + 1)]


@dataclass(frozen=True)
class Workload:
    """``runners`` jobs asking ``requests`` times each over ``resources`` resources of ``repo``.

    ``stagger`` is the gap in seconds between two runners' starts (0: all start at once).
    """

    name: str
    runners: int
    requests: int
    resources: int
    skew: float
    stagger: float
    repo: str
    seed: int = 7

    def __post_init__(self) -> None:
        if min(self.runners, self.requests, self.resources) < 1:
            raise ConfigError("runners, requests and resources must be at least 1")
        if self.skew < 0 or self.stagger < 0:
            raise ConfigError("skew and stagger must not be negative")

    def plans(self) -> list[RunnerPlan]:
        """One plan per runner: its own token, its draws, its start delay."""
        paths = catalogue(self.repo, self.resources)
        weights = zipf_weights(len(paths), self.skew)
        plans = []
        for i in range(self.runners):
            rng = random.Random(f"{self.seed}:{i}")
            drawn = rng.choices(range(len(paths)), weights, k=self.requests)
            plans.append(RunnerPlan(token=f"ghs_bench_{self.name}_{i:03d}",
                                    paths=tuple(paths[d] for d in drawn),
                                    delay=i * self.stagger))
        return plans


def unique_resources(plans: Sequence[RunnerPlan]) -> int:
    """Resources asked for by at least one runner: what a whole fleet must fetch once."""
    return len({path for plan in plans for path in plan.paths})


def runner_distinct(plans: Sequence[RunnerPlan]) -> int:
    """Sum over runners of the resources each asked for: what a cache per runner must fetch."""
    return sum(len(set(plan.paths)) for plan in plans)
