"""``github-p2p queue``: a run's work queues, through the daemon at ``GITHUB_P2P_ENDPOINT``.

Every leg of a matrix submits the same list, then pulls items until the queue is drained::

    github-p2p queue submit tests --file tests.txt
    github-p2p queue run tests -- python -m pytest -q      # each item appended to the command

The queue is keyed by the run (``GITHUB_RUN_ID``, ``GITHUB_RUN_ATTEMPT``) and its name, so a
re-run of the workflow replays only what did not succeed. ``next`` exits 3 once the queue is
drained. While the queue's hub is away (a restart), commands retry for ``--fleet-timeout``
seconds: the queue is durable there.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from github_p2p.core.queue import QueuePolicy
from github_p2p.core.queueseal import DEFAULT_RUN_ID, QueueRef
from github_p2p.errors import ConfigError, FleetUnavailableError, GitHubP2PError, StaleLeaseError
from github_p2p.workqueue.api import Claim
from github_p2p.workqueue.client import QueueClient

__all__ = ["EXIT_DRAINED", "register"]

#: ``queue next`` exits with this when the queue is drained.
EXIT_DRAINED = 3
#: Seconds one claim request waits at the hub while others hold leases.
_CLAIM_WAIT = 20.0
_T = TypeVar("_T")


def register(sub: Any) -> None:
    """Add ``queue`` and its subcommands to the ``github-p2p`` parser."""
    queue = sub.add_parser("queue", help="a run's work queue: matrix legs pull items until "
                           "it is drained")
    ops = queue.add_subparsers(dest="queue_command", required=True,
                               parser_class=_intermixed(type(queue)))

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--endpoint", help="daemon endpoint (default: $GITHUB_P2P_ENDPOINT)")
        parser.add_argument("--run-id", help="default: $GITHUB_RUN_ID, else 'local'")
        parser.add_argument("--attempt", type=int, help="default: $GITHUB_RUN_ATTEMPT, else 1")
        parser.add_argument("--fleet-timeout", type=float, default=300.0, metavar="SECONDS",
                            help="how long to retry while the queue's hub is unreachable")

    submit = ops.add_parser("submit", help="create the run's queue NAME (idempotent)")
    common(submit)
    submit.add_argument("--file", type=Path, action="append", default=[],
                        help="items, one per line ('#' comments and blank lines skipped; "
                        "'-' is stdin), after the ITEMs given as arguments; repeatable")
    submit.add_argument("--lease-ttl", type=float, default=QueuePolicy.lease_ttl,
                        metavar="SECONDS", help="lease without a heartbeat (default 60)")
    submit.add_argument("--max-attempts", type=int, default=QueuePolicy.max_attempts,
                        help="deliveries of an item before it is failed for good (default 3)")
    submit.add_argument("--retry-failed", action="store_true",
                        help="put a failed item back in the queue while attempts remain")
    submit.add_argument("name")
    submit.add_argument("items", nargs="*", metavar="ITEM")
    submit.set_defaults(func=_cmd_submit)

    nxt = ops.add_parser("next", help='claim one item: prints {"id":…, "item":…}; '
                         "exit 3 when drained")
    common(nxt)
    nxt.add_argument("--holder", default="", help="name shown in status (default: the runner)")
    nxt.add_argument("name")
    nxt.set_defaults(func=_cmd_next)

    done = ops.add_parser("done", help="complete a claimed item")
    common(done)
    done.add_argument("--failed", action="store_true", help="the item failed")
    done.add_argument("--token", help="the lease token (default: the one the daemon handed out)")
    done.add_argument("name")
    done.add_argument("id", type=int)
    done.set_defaults(func=_cmd_done)

    status = ops.add_parser("status", help="JSON: counts by state, and holders")
    common(status)
    status.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for the queue to drain")
    status.add_argument("name")
    status.set_defaults(func=_cmd_status)

    run = ops.add_parser("run", help="next → run CMD with the item appended → done/failed, "
                         "until drained (options go before NAME)")
    common(run)
    run.add_argument("--holder", default="", help="name shown in status (default: the runner)")
    run.add_argument("--heartbeat", type=float, default=0.0, metavar="SECONDS",
                     help="heartbeat interval (default: a third of the lease)")
    run.add_argument("name")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    run.set_defaults(func=_cmd_run)


# -- shared ------------------------------------------------------------------------------------

def _intermixed(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """``base`` parsing options and positionals in any order (``submit NAME --file F ITEM``):
    plain argparse takes all of a ``*`` positional at once and refuses items after an option.
    A parser with a ``REMAINDER`` positional (``run NAME -- CMD``) parses the plain way."""

    class Intermixed(base):  # type: ignore[valid-type,misc]
        _inside = False

        def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
            if self._inside:  # parse_known_intermixed_args calls back into this method
                return super().parse_known_args(args, namespace)
            if any(action.nargs == argparse.REMAINDER for action in self._actions):
                return super().parse_known_args(args, namespace)
            self._inside = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._inside = False

    return Intermixed


def _ref(args: argparse.Namespace) -> QueueRef:
    run_id = args.run_id or os.environ.get("GITHUB_RUN_ID", "").strip() or DEFAULT_RUN_ID
    attempt = args.attempt
    if attempt is None:
        raw = os.environ.get("GITHUB_RUN_ATTEMPT", "").strip() or "1"
        try:
            attempt = int(raw)
        except ValueError as exc:
            raise ConfigError(f"GITHUB_RUN_ATTEMPT must be a number, got {raw!r}") from exc
    return QueueRef(args.name, run_id, attempt)


def _client(args: argparse.Namespace) -> QueueClient:
    endpoint = (args.endpoint or os.environ.get("GITHUB_P2P_ENDPOINT", "")).strip()
    if not endpoint:
        raise ConfigError("no daemon endpoint: set GITHUB_P2P_ENDPOINT (the action does) or "
                          "pass --endpoint")
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"the daemon endpoint must be an http(s) URL, got {endpoint!r}")
    return QueueClient(endpoint)


def _say(message: str, kind: str = "notice") -> None:
    """A message for the user; a workflow annotation when running in GitHub Actions."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::{kind}::github-p2p: {message}", file=sys.stderr, flush=True)
    else:
        print(f"github-p2p: {message}", file=sys.stderr, flush=True)


def _retrying(args: argparse.Namespace, call: Callable[[], _T]) -> _T:
    """``call()``, retried while the queue's hub is unreachable (up to --fleet-timeout)."""
    deadline = time.monotonic() + args.fleet_timeout
    pause = 0.5
    while True:
        try:
            return call()
        except FleetUnavailableError as exc:
            if time.monotonic() + pause > deadline:
                raise
            print(f"github-p2p: {exc}; retrying", file=sys.stderr, flush=True)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _print(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


def _read_items(args: argparse.Namespace) -> list[str]:
    items = list(args.items)
    for path in args.file:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read items from {path}: {exc}") from exc
        items += [line.strip() for line in text.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    return items


# -- commands ----------------------------------------------------------------------------------

def _cmd_submit(args: argparse.Namespace) -> int:
    ref = _ref(args)
    items = _read_items(args)
    policy = QueuePolicy(args.lease_ttl, args.max_attempts, args.retry_failed)
    client = _client(args)
    result = _retrying(args, lambda: client.submit(ref, items, policy))
    if result.notice:
        _say(result.notice)
    _print(result.to_json())
    return 0


def _claims(args: argparse.Namespace, client: QueueClient, ref: QueueRef) -> Iterator[Claim]:
    """Claims until the queue is drained, waiting while others hold leases."""
    while True:
        result = _retrying(args, lambda: client.claim(ref, holder=args.holder,
                                                      wait=_CLAIM_WAIT))
        if isinstance(result, Claim):
            yield result
        elif result.drained:
            return


def _cmd_next(args: argparse.Namespace) -> int:
    ref = _ref(args)
    client = _client(args)
    for claim in _claims(args, client, ref):
        _print({"id": claim.id, "item": claim.item})
        return 0
    return EXIT_DRAINED


def _cmd_done(args: argparse.Namespace) -> int:
    ref = _ref(args)
    client = _client(args)
    done = _retrying(args, lambda: client.complete(ref, args.id, args.token,
                                                   ok=not args.failed))
    _print({"id": done.id, "state": done.state, "outcome": done.outcome})
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    ref = _ref(args)
    client = _client(args)
    deadline = time.monotonic() + max(0.0, args.wait)
    while True:
        wait = min(max(0.0, deadline - time.monotonic()), 30.0)
        status = _retrying(args, functools.partial(client.status, ref, wait=wait))
        if status.drained or deadline - time.monotonic() <= 0:
            break
    _print(status.to_json())
    return 0


# -- run ---------------------------------------------------------------------------------------

class _Heartbeat:
    """Renews one lease from a thread while the item's command runs."""

    def __init__(self, client: QueueClient, ref: QueueRef, claim: Claim, interval: float
                 ) -> None:
        self._client, self._ref, self._claim, self._interval = client, ref, claim, interval
        self._stop = threading.Event()
        self.lost: str | None = None
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{claim.id}")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._client.heartbeat(self._ref, self._claim.id, self._claim.token)
            except StaleLeaseError as exc:
                self.lost = str(exc)
                _say(f"item {self._claim.id}: lease lost: {exc}", "warning")
                return
            except GitHubP2PError as exc:  # the hub restarting: keep trying, the lease holds
                print(f"github-p2p: heartbeat for item {self._claim.id} failed: {exc}",
                      file=sys.stderr, flush=True)


class _Child:
    """The item's command; a SIGTERM/SIGINT to us is passed on to it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.signals: list[int] = []

    def on_signal(self, signum: int, _: FrameType | None) -> None:
        self.signals.append(signum)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def run(self, command: Sequence[str], item: str) -> int:
        """Run ``command item`` to its end (a plain blocking wait: no polling delay)."""
        try:
            self.process = subprocess.Popen([*command, item])
        except OSError as exc:
            print(f"github-p2p: cannot run {command[0]!r}: {exc}", file=sys.stderr, flush=True)
            return 127
        if self.signals:  # a signal arrived before there was a child to pass it to
            self.process.terminate()
        return self.process.wait()


class _Reporter:
    """Sends one result at a time from a thread, so that the next claim need not wait."""

    def __init__(self, args: argparse.Namespace, client: QueueClient, ref: QueueRef) -> None:
        self._args, self._client, self._ref = args, client, ref
        self._thread: threading.Thread | None = None
        self._error: GitHubP2PError | None = None

    def send(self, claim: Claim, ok: bool) -> None:
        """Report ``claim`` in the background (after the previous report is through)."""
        self.wait()
        self._thread = threading.Thread(target=self._report, args=(claim, ok),
                                        name=f"report-{claim.id}")
        self._thread.start()

    def wait(self) -> None:
        """Wait for the report in flight; raise its error, if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def _report(self, claim: Claim, ok: bool) -> None:
        try:
            _retrying(self._args, lambda: self._client.complete(self._ref, claim.id,
                                                                claim.token, ok=ok))
        except StaleLeaseError as exc:
            _say(f"item {claim.id}: result not recorded: {exc}", "warning")
        except GitHubP2PError as exc:
            self._error = exc


def _cmd_run(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ConfigError("queue run: give the command after --, e.g. "
                          "queue run NAME -- python -m pytest")
    if command[0].startswith("-"):
        raise ConfigError("queue run: put options before NAME; the command follows --")
    ref = _ref(args)
    client = _client(args)
    # Heartbeats and results go from other threads, each with its own HTTP session.
    beats, reports = _client(args), _client(args)
    child = _Child()
    previous = {sig: signal.signal(sig, child.on_signal)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    ran = failed = 0
    started = time.monotonic()
    # A result goes to the hub while the next claim does: one round trip per item, not two.
    # (The last claim then waits for the last result, which wakes it at once.)
    reporter = _Reporter(args, reports, ref)
    try:
        for claim in _claims(args, client, ref):
            if ran == 0 and claim.mode == "local":
                _say(f"no fleet: this runner works through the whole queue {ref.name!r} alone")
            interval = args.heartbeat or max(0.5, claim.lease_ttl / 3)
            began = time.monotonic()
            with _Heartbeat(beats, ref, claim, interval):
                code = child.run(command, claim.item)
            if child.signals:
                break  # not reported: the lease lapses, or goes back with our connection
            ran += 1
            failed += code != 0
            verdict = "passed" if code == 0 else f"failed (exit {code})"
            print(f"github-p2p: queue {ref.name}: item {claim.id} {claim.item!r} {verdict} in "
                  f"{time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)
            reporter.send(claim, code == 0)
            if child.signals:
                break
        reporter.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if child.signals:
        return 128 + child.signals[0]
    final = _retrying(args, lambda: client.status(ref))
    c = final.counts
    print(f"github-p2p: queue {ref.name}: this runner ran {ran} item(s) ({failed} failed) in "
          f"{time.monotonic() - started:.1f} s; queue: {c.done} done, {c.failed} failed"
          f"{f', {c.carried} carried over from an earlier attempt' if c.carried else ''}",
          file=sys.stderr, flush=True)
    return 1 if failed else 0
