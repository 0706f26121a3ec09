"""gh's template helpers that deal with text: colours, display width, truncation, the table
printer, time formatting (pure; the clock is passed in).

They follow go-gh 1.0 (``pkg/template``, ``pkg/text``, ``pkg/tableprinter``) and mgutz/ansi,
which gh 2.23 builds on. ``gh api --template`` always uses the terminal table printer, 80
columns wide when stdout is not a terminal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = [
    "TablePrinter", "ansi_color", "display_width", "time_ago", "time_format", "truncate",
    "truncate_multiline",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_COLORS = {"black": 0, "red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6,
           "white": 7}
_ELLIPSIS = "..."


def ansi_color(text: str, style: str) -> str:
    """mgutz/ansi ``Color``: ``"red+b:white+h"`` style strings."""
    if not style:
        return text
    if style == "reset":
        return "\x1b[0m" + text + "\x1b[0m"
    fore, _, back = style.partition(":")
    fg_name, _, fg_style = fore.partition("+")
    code = "\x1b["
    for flag, part in (("b", "1;"), ("B", "5;"), ("u", "4;"), ("i", "7;")):
        if flag in fg_style:
            code += part
    code += f"{(90 if 'h' in fg_style else 30) + _COLORS.get(fg_name, 0)};"
    if back:
        bg_name, _, bg_style = back.partition("+")
        code += f"{(100 if 'h' in bg_style else 40) + _COLORS.get(bg_name, 0)};"
    return code[:-1] + "m" + text + "\x1b[0m"


def _rune_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    if ord(char) < 32 or 0x7F <= ord(char) < 0xA0:
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal, escape sequences excluded."""
    return sum(_rune_width(c) for c in _ANSI.sub("", text))


def _cut(text: str, width: int, tail: str) -> str:
    # muesli/reflow truncate.StringWithTail: keep runes while they fit beside the tail;
    # escape sequences are kept and take no room.
    limit = width - display_width(tail)
    out: list[str] = []
    used = 0
    pos = 0
    while pos < len(text):
        escape = _ANSI.match(text, pos)
        if escape is not None:
            out.append(escape.group())
            pos = escape.end()
            continue
        w = _rune_width(text[pos])
        if used + w > limit:
            break
        used += w
        out.append(text[pos])
        pos += 1
    return "".join(out) + tail


def truncate(max_width: int, text: str) -> str:
    """go-gh ``text.Truncate``."""
    if display_width(text) <= max_width:
        return text
    tail = _ELLIPSIS if max_width >= len(_ELLIPSIS) + 2 else ""
    cut = _cut(text, max_width, tail)
    if display_width(cut) < max_width:
        cut += " "
    return cut


def truncate_multiline(max_width: int, text: str) -> str:
    """The first line only (marked with an ellipsis), then :func:`truncate`."""
    match = re.search(r"[\r\n]", text)
    if match is not None:
        text = text[:match.start()] + _ELLIPSIS
    return truncate(max_width, text)


@dataclass
class TablePrinter:
    """go-gh's terminal table printer: columns padded and truncated to ``max_width``."""

    max_width: int = 80
    rows: list[list[str]] = field(default_factory=list)

    def add_row(self, cells: list[str]) -> None:
        """One ``tablerow``."""
        self.rows.append(cells)

    def render(self) -> str:
        """The table so far (and forget it, as ``tablerender`` starts a new one)."""
        rows, self.rows = [row for row in self.rows if row], []
        if not rows:
            return ""
        widths = self._widths(rows)
        last = len(rows[0]) - 1
        lines = []
        for row in rows:
            cells = []
            for col, text in enumerate(row):
                width = widths[col] if col < len(widths) else 0
                cell = truncate_multiline(width, text)
                if col < last:
                    cell += " " * max(0, width - display_width(text))
                cells.append(cell)
            lines.append("  ".join(cells) + "\n")
        return "".join(lines)

    def _widths(self, rows: list[list[str]]) -> list[int]:
        count = len(rows[0])
        most = [0] * count
        for row in rows:
            for col, text in enumerate(row[:count]):
                most[col] = max(most[col], display_width(text))
        widths = [0] * count  # every field truncates, so no column starts fixed

        def available() -> int:
            return self.max_width - 2 * (count - 1) - sum(widths)

        def flexible() -> int:
            return count - sum(1 for w in widths if w > 0)

        if available() > 0 and flexible() > 0:
            per = available() // flexible()
            for col in range(count):
                if most[col] < per:
                    widths[col] = most[col]
        if flexible() > 0:
            per = available() // flexible()
            for col in range(count):
                if widths[col] == 0:
                    if most[col] < per:
                        widths[col] = most[col]
                    elif per > 0:
                        widths[col] = per
        room = available()
        if room > 0:
            for col in range(count):
                add = min(room, most[col] - widths[col])
                widths[col] += add
                room -= add
                if room <= 0:
                    break
        return widths


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": '
                         "cannot parse") from exc


def _plural(count: int, thing: str) -> str:
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"


def time_ago(now: float, text: str) -> str:
    """go-gh ``timeago``."""
    seconds = now - _parse_time(text).timestamp()
    hours = int(seconds // 3600)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return _plural(int(seconds // 60), "minute") + " ago"
    if seconds < 86400:
        return _plural(hours, "hour") + " ago"
    if seconds < 30 * 86400:
        return _plural(hours // 24, "day") + " ago"
    if seconds < 365 * 86400:
        return _plural(hours // 24 // 30, "month") + " ago"
    return _plural(int(hours / 24 / 365), "year") + " ago"


def _zone(moment: datetime, sep: str, seconds: bool, zulu: bool) -> str:
    offset = moment.utcoffset()
    total = int(offset.total_seconds()) if offset is not None else 0
    if zulu and total == 0:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    parts = [f"{total // 3600:02d}", f"{total % 3600 // 60:02d}"]
    if seconds:
        parts.append(f"{total % 60:02d}")
    return sign + sep.join(parts)


_LAYOUT: list[tuple[str, Callable[[datetime], str]]] = [
    ("January", lambda t: t.strftime("%B")), ("Jan", lambda t: t.strftime("%b")),
    ("Monday", lambda t: t.strftime("%A")), ("Mon", lambda t: t.strftime("%a")),
    ("MST", lambda t: t.tzname() or "UTC"),
    ("2006", lambda t: f"{t.year:04d}"), ("002", lambda t: t.strftime("%j")),
    ("01", lambda t: f"{t.month:02d}"), ("02", lambda t: f"{t.day:02d}"),
    ("_2006", lambda t: f"_{t.year:04d}"), ("_2", lambda t: f"{t.day:2d}"),
    ("03", lambda t: f"{(t.hour % 12) or 12:02d}"),
    ("04", lambda t: f"{t.minute:02d}"), ("05", lambda t: f"{t.second:02d}"),
    ("06", lambda t: f"{t.year % 100:02d}"), ("15", lambda t: f"{t.hour:02d}"),
    ("PM", lambda t: "PM" if t.hour >= 12 else "AM"),
    ("pm", lambda t: "pm" if t.hour >= 12 else "am"),
    ("-07:00:00", lambda t: _zone(t, ":", True, False)),
    ("-070000", lambda t: _zone(t, "", True, False)),
    ("-07:00", lambda t: _zone(t, ":", False, False)),
    ("-0700", lambda t: _zone(t, "", False, False)),
    ("-07", lambda t: _zone(t, "", False, False)[:3]),
    ("Z07:00:00", lambda t: _zone(t, ":", True, True)),
    ("Z070000", lambda t: _zone(t, "", True, True)),
    ("Z07:00", lambda t: _zone(t, ":", False, True)),
    ("Z0700", lambda t: _zone(t, "", False, True)),
    ("Z07", lambda t: _zone(t, "", False, True)[:3]),
    ("1", lambda t: str(t.month)), ("2", lambda t: str(t.day)),
    ("3", lambda t: str((t.hour % 12) or 12)), ("4", lambda t: str(t.minute)),
    ("5", lambda t: str(t.second)),
]
_FRACTION = re.compile(r"[.,](0+|9+)(?!\d)")


def time_format(layout: str, text: str) -> str:
    """go-gh ``timefmt``: ``time.Parse(RFC3339, text).Format(layout)``."""
    moment = _parse_time(text)
    out: list[str] = []
    pos = 0
    while pos < len(layout):
        fraction = _FRACTION.match(layout, pos)
        if fraction is not None:
            digits = f"{moment.microsecond:06d}000"[:len(fraction.group(1))]
            if fraction.group(1)[0] == "9":
                digits = digits.rstrip("0")
                out.append(layout[pos] + digits if digits else "")
            else:
                out.append(layout[pos] + digits)
            pos = fraction.end()
            continue
        for token, render in _LAYOUT:
            if layout.startswith(token, pos):
                out.append(render(moment))
                pos += len(token)
                break
        else:
            out.append(layout[pos])
            pos += 1
    return "".join(out)


def utc_now_iso(now: float) -> str:
    """``now`` as an RFC 3339 UTC time (for tests)."""
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
