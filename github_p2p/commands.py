"""Subcommands beyond ``api``: registered here so cli.py stays a thin dispatcher."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the fleet subcommands to the ``github-p2p`` parser."""
    demo = sub.add_parser("demo", help="a whole fleet on this machine against a simulated API")
    demo.add_argument("--runners", type=int, default=3)
    demo.add_argument("--resources", type=int, default=30)
    demo.add_argument("--latency", type=float, default=0.05, help="simulated GitHub latency (s)")
    demo.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)
