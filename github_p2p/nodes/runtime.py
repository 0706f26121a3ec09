"""Process plumbing shared by the daemons: HTTP serving, ready files, signals, lifetimes."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.types import ASGIApp

from github_p2p.errors import ConfigError

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "NODE_GC_THRESHOLD",
    "return_large_buffers",
    "serve_http",
    "settle_heap",
    "stop_on_signals",
    "write_ready_file",
]

log = logging.getLogger(__name__)


async def serve_http(nursery: trio.Nursery, app: ASGIApp, host: str, port: int,
                     shutdown: trio.Event, stopped: trio.Event | None = None) -> str:
    """Start serving ``app`` in ``nursery``; returns its URL once it is really listening.

    ``shutdown`` starts a graceful stop (in-flight requests finish); ``stopped`` is set when
    the server has returned.
    """
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("github_p2p.http")
    config.graceful_timeout = 2.0
    async def run(task_status: Any) -> None:
        try:
            await serve(app, config, shutdown_trigger=shutdown.wait,  # type: ignore[arg-type]
                        task_status=task_status)
        finally:
            if stopped is not None:
                stopped.set()

    try:
        binds: list[str] = await nursery.start(run)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    except BaseExceptionGroup as group:
        # hypercorn binds inside its own nurseries: a busy port arrives wrapped in groups.
        failed = _sole_os_error(group)
        if failed is None:
            raise
        raise _listen_error(host, port, failed) from failed
    return binds[0].rstrip("/")


def _listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    reason = exc.strerror or str(exc)
    return ConfigError(f"cannot listen for HTTP on {host}:{port}: {reason}")


def _sole_os_error(group: BaseExceptionGroup[BaseException]) -> OSError | None:
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 and isinstance(leaves[0], OSError) else None


def write_ready_file(path: str | Path | None, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (readers never see half a file)."""
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(data), handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def stop_on_signals(shutdown: trio.Event) -> None:
    """Set ``shutdown`` on SIGTERM or SIGINT (a clean stop, like ``github-p2p stop``)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s; stopping", signal.Signals(signum).name)
            shutdown.set()
            return


#: glibc's ``mallopt`` parameter for the mmap threshold.
_M_MMAP_THRESHOLD = -3


def return_large_buffers(threshold: int = 128 * 1024) -> bool:
    """Have glibc serve every allocation of ``threshold`` bytes or more with its own mapping,
    given back to the system when freed; ``False`` where that cannot be set (not glibc).

    By default glibc raises that threshold each time such a block is freed (up to 32 MiB), so a
    hub that once held many 4 MiB frames later takes them from its heap, which fragments and is
    not given back: measured +11 MB of resident memory per attack round, flat with this.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        mallopt = ctypes.CDLL(libc_name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


#: How many container allocations (net of frees) start a young-generation collection in a node
#: process; CPython's default is 700.
NODE_GC_THRESHOLD = 20_000


def settle_heap(young: int = NODE_GC_THRESHOLD) -> None:
    """Tune the cyclic garbage collector for a long-running node; call once start-up is done.

    What is alive now (modules, settings) is frozen out of later collections, and the young
    generation is collected every ``young`` allocations instead of every 700. A node allocates
    hundreds of short-lived containers per message (trio tasks and cancel scopes, coroutine
    frames, messages), nearly all freed by reference counting, so the default ran a collection
    every few messages for nothing. Cyclic garbage waits a little longer: ``young`` objects at
    most. Measured in bench/RESULTS.md ("The cache core").
    """
    # No gc.collect() first: after the imports it found ~50 unreachable objects and took
    # ~30 ms of every node's start; those few are frozen with the rest.
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)
