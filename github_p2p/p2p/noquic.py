"""Keep py-libp2p 0.8.1's QUIC stack out of processes that only speak TCP.

``import libp2p`` imports its QUIC transport unconditionally (``libp2p/__init__.py``,
``custom_types``, ``network.swarm`` and ``network.stream.net_stream`` all import from
``libp2p.transport.quic``), and with it ``aioquic``, pyOpenSSL and ``pylsqpack``; dnspython, which
libp2p's multiaddr resolver imports, loads ``aioquic`` again for DNS-over-QUIC because it is
installed. github-p2p dials and listens on TCP only (bootstrap multiaddrs are validated as TCP),
so none of that code ever runs. Measured on this project's 2-core machine with bytecode: the
daemon imports ~100 ms faster and its RSS is ~4.5 MiB smaller; without bytecode the QUIC
transport alone costs seconds of compiling.

:func:`keep_quic_unloaded` puts stand-in modules in front of ``libp2p.transport.quic.*``. They
hold exactly the names the rest of libp2p imports from there: ``is_quic_multiaddr`` answers
truthfully; the QUIC classes cannot be instantiated (nothing constructs them on a TCP-only host,
and ``isinstance`` checks against them are correctly false); the two QUIC stream errors are
exception classes that nothing raises. dnspython is told, through its own feature switch, that
DNS-over-QUIC is unavailable. Like the workarounds in :mod:`github_p2p.p2p.host`, it is a named,
optional step with a regression test (``tests/test_noquic.py``) that shows the defect without it
and a TCP fleet working with it. It must run before anything imports ``libp2p`` or ``dns``; the
daemon commands call it first thing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from github_p2p.errors import ConfigError

__all__ = ["QUIC_MODULES", "keep_quic_unloaded", "quic_loaded"]

_PACKAGE = "libp2p.transport.quic"


class QUICUnavailable:
    """Stands in for the QUIC transport classes; constructing one is a configuration error."""

    def __init__(self, *_: Any, **__: Any) -> None:
        raise ConfigError("QUIC is not available in github-p2p: use /tcp/ multiaddrs")


class QUICStreamClosedError(Exception):
    """Stand-in: no QUIC stream exists, so nothing raises it."""


class QUICStreamResetError(Exception):
    """Stand-in: no QUIC stream exists, so nothing raises it."""


def is_quic_multiaddr(maddr: Any) -> bool:
    """Whether ``maddr`` names a QUIC transport (the real function's contract)."""
    return any(str(proto.name).startswith("quic") for proto in maddr.protocols())


#: Every module of the QUIC package that the rest of libp2p 0.8.1 imports, with its names.
QUIC_MODULES: dict[str, dict[str, Any]] = {
    _PACKAGE: {},
    f"{_PACKAGE}.utils": {"is_quic_multiaddr": is_quic_multiaddr},
    f"{_PACKAGE}.transport": {"QUICTransport": QUICUnavailable},
    f"{_PACKAGE}.config": {"QUICTransportConfig": QUICUnavailable},
    f"{_PACKAGE}.connection": {"QUICConnection": QUICUnavailable},
    f"{_PACKAGE}.stream": {"QUICStream": QUICUnavailable},
    f"{_PACKAGE}.exceptions": {"QUICStreamClosedError": QUICStreamClosedError,
                               "QUICStreamResetError": QUICStreamResetError},
}


class _StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the QUIC package's modules and fills them with the stand-ins above."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in QUIC_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == _PACKAGE)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__.update(QUIC_MODULES[module.__name__])
        module.__dict__["github_p2p_stand_in"] = True
        if module.__name__ == _PACKAGE:
            module.__path__ = []


def keep_quic_unloaded() -> bool:
    """Install the stand-ins (once per process). False when it is too late: libp2p's QUIC
    package or dnspython's QUIC support is already imported."""
    if any(isinstance(finder, _StandIns) for finder in sys.meta_path):
        return True
    if _PACKAGE in sys.modules or "dns.quic" in sys.modules:
        return False
    sys.meta_path.insert(0, _StandIns())
    try:
        import dns._features
    except ImportError:  # no dnspython: nothing of it to switch off
        return True
    dns._features.force("doq", False)
    return True


def quic_loaded() -> bool:
    """Whether the real QUIC stack is in this process."""
    module = sys.modules.get(f"{_PACKAGE}.transport")
    real_transport = module is not None and not getattr(module, "github_p2p_stand_in", False)
    return real_transport or "aioquic" in sys.modules
