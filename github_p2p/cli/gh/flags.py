"""A strict parser for the subset of ``gh`` (pflag) command lines the wrapper serves (pure).

It knows exactly the flags it is given and refuses anything else, so that a command it does not
fully understand runs the real ``gh`` unchanged instead of being guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Flag", "Parsed", "parse_flags"]


@dataclass(frozen=True)
class Flag:
    """A long flag, its one-letter shorthand (if any), and whether it takes a value."""

    name: str
    short: str | None = None
    takes_value: bool = True


@dataclass(frozen=True)
class Parsed:
    """Flags as ``(long name, value)`` pairs in order (``"true"`` for booleans) and the
    positional arguments."""

    flags: tuple[tuple[str, str], ...]
    positionals: tuple[str, ...]

    def values(self, name: str) -> list[str]:
        """Every value given for ``name``."""
        return [value for flag, value in self.flags if flag == name]

    def last(self, name: str) -> str | None:
        """The last value given for ``name`` (pflag: the last one wins)."""
        found = self.values(name)
        return found[-1] if found else None

    def has(self, name: str) -> bool:
        """Whether ``name`` was given."""
        return any(flag == name for flag, _ in self.flags)


def parse_flags(args: Sequence[str], known: Sequence[Flag]) -> Parsed | None:
    """Parse ``args`` against ``known``; ``None`` when anything is not understood.

    Accepted: ``--name value``, ``--name=value``, ``--bool``, ``-x value``, ``-xvalue``, ``-b``,
    and ``--`` (the rest is positional). Refused: unknown flags, ``--bool=false`` and grouped
    shorthands such as ``-ab`` (rare, and easy to get subtly wrong).
    """
    by_long: Mapping[str, Flag] = {flag.name: flag for flag in known}
    by_short: Mapping[str, Flag] = {flag.short: flag for flag in known if flag.short}
    flags: list[tuple[str, str]] = []
    positionals: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positionals.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, inline = arg[2:].partition("=")
            flag = by_long.get(name)
            if flag is None:
                return None
            if not flag.takes_value:
                if eq and inline != "true":
                    return None
                flags.append((flag.name, "true"))
                continue
            if eq:
                flags.append((flag.name, inline))
            elif i < len(args):
                flags.append((flag.name, args[i]))
                i += 1
            else:
                return None
        elif arg.startswith("-") and len(arg) > 1:
            flag = by_short.get(arg[1])
            if flag is None:
                return None
            if not flag.takes_value:
                if len(arg) > 2:
                    return None
                flags.append((flag.name, "true"))
            elif len(arg) > 2:
                # pflag reads both -Rvalue and -R=value
                flags.append((flag.name, arg[3:] if arg[2] == "=" else arg[2:]))
            elif i < len(args):
                flags.append((flag.name, args[i]))
                i += 1
            else:
                return None
        else:
            positionals.append(arg)
    return Parsed(tuple(flags), tuple(positionals))
