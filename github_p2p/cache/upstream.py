"""Sending requests to GitHub: the I/O edge, with bounded, header-aware retries.

Every attempt is counted in the statistics as one upstream call (retries included), because
that is what GitHub counts. Redirects are not followed by ``requests`` behind our back, for the
same reason. The retry loop is tenacity's; the decisions are :func:`ratelimit.decide_retry`'s.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, stop_after_attempt

from github_p2p.core.ratelimit import RateLimit, RetryDecision, RetrySettings, decide_retry
from github_p2p.core.stats import Stats
from github_p2p.errors import UpstreamUnavailableError

__all__ = ["Upstream", "UpstreamResponse"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamResponse:
    """What GitHub answered, with lower-cased header names."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    #: Requests sent to GitHub to obtain this answer (1 + retries).
    calls: int = 1
    rate_limit: RateLimit = field(default_factory=lambda: RateLimit(None, None, None, None, None))


class Upstream:
    """Sends one logical request to GitHub, retrying within :class:`RetrySettings`."""

    def __init__(
        self,
        stats: Stats,
        *,
        retry: RetrySettings | None = None,
        timeout: float = 30.0,
        user_agent: str = "github-p2p",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self._stats = stats
        self._retry = retry or RetrySettings()
        self._timeout = timeout
        self._user_agent = user_agent
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._session_factory = session_factory
        # requests.Session is not documented as thread-safe; the daemon serves many threads.
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            self._local.session = session
        return session

    def _attempt(
        self, method: str, url: str, headers: Mapping[str, str], data: bytes | None
    ) -> UpstreamResponse:
        all_headers = {"User-Agent": self._user_agent, **headers}
        graphql = urlsplit(url).path.endswith("/graphql")
        try:
            resp = self._session().request(
                method, url, headers=all_headers, data=data,
                timeout=self._timeout, allow_redirects=False,
            )
        except requests.RequestException as exc:
            self._stats.upstream_call(None, graphql=graphql)
            # The URL and exception text never carry the token (it lives in a header).
            raise UpstreamUnavailableError(f"cannot reach GitHub at {url}: {type(exc).__name__}"
                                           ) from exc
        lowered = {k.lower(): v for k, v in resp.headers.items()}
        limit = RateLimit.from_headers(lowered)
        self._stats.upstream_call(limit.remaining, graphql=graphql)
        return UpstreamResponse(resp.status_code, lowered, resp.content, url, 1, limit)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        data: bytes | None = None,
        *,
        wait_for_limits: bool = True,
    ) -> UpstreamResponse:
        """Send the request; returns GitHub's final answer, whatever its status.

        ``wait_for_limits`` false returns a rate-limit answer at once instead of waiting it out.

        Raises :class:`UpstreamUnavailableError` when GitHub could not be reached at all.
        Only idempotent methods are retried on 5xx or connection failures; rate-limit answers
        are retried for every method, since GitHub did not act on them.
        """
        decisions: dict[int, RetryDecision] = {}
        idempotent = method.upper() in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")

        def should_retry(state: RetryCallState) -> bool:
            outcome = state.outcome
            assert outcome is not None
            status: int | None
            hdrs: Mapping[str, str]
            if outcome.failed:
                exc = outcome.exception()
                if not isinstance(exc, UpstreamUnavailableError) or not idempotent:
                    return False
                status, hdrs, hint = None, {}, ""
            else:
                result: UpstreamResponse = outcome.result()
                status, hdrs = result.status, result.headers
                hint = result.body[:512].decode("utf-8", "replace")
                if status >= 500 and not idempotent:
                    return False
            decision = decide_retry(
                status=status, headers=hdrs, attempt=state.attempt_number - 1,
                now=self._clock(), settings=self._retry, jitter=self._jitter(), body_hint=hint,
                wait_for_limits=wait_for_limits,
            )
            decisions[state.attempt_number] = decision
            if decision.retry:
                log.info("GitHub %s for %s: retrying in %.1fs (%s)",
                         status or "unreachable", url, decision.delay, decision.reason)
            return decision.retry

        def wait(state: RetryCallState) -> float:
            return decisions[state.attempt_number].delay

        def give_up(state: RetryCallState) -> UpstreamResponse:
            assert state.outcome is not None
            result: UpstreamResponse = state.outcome.result()  # re-raises a failure
            return result

        retrying = Retrying(
            retry=should_retry,
            wait=wait,
            stop=stop_after_attempt(self._retry.max_retries + 1),
            sleep=self._sleep,
            retry_error_callback=give_up,
            reraise=True,
        )
        attempts = 0

        def attempt() -> UpstreamResponse:
            nonlocal attempts
            attempts += 1
            return self._attempt(method, url, headers, data)

        try:
            final: UpstreamResponse = retrying(attempt)
        except UpstreamUnavailableError as exc:
            exc.calls = attempts
            raise
        return UpstreamResponse(final.status, final.headers, final.body, final.url, attempts,
                                final.rate_limit)
