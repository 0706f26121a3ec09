"""Printing a ``gh api`` answer exactly as gh 2.23 prints it.

* JSON bodies pass gh's ASCII sanitizer first (``\\u001b`` becomes ``^[``: control characters
  never reach a terminal), then print as received; with colour (a terminal), indented and
  coloured like gh's ``jsoncolor``;
* ``-i``: ``HTTP/1.1 200 OK``, then the headers sorted by their canonical (Go) names, ``\\r\\n``
  line ends, an empty line;
* ``--jq``: the filter runs on each page with the ``jq`` program; each result prints as go-gh
  prints it (strings raw, numbers as Go floats, ``null`` as an empty line, objects and arrays as
  Go's ``json.Marshal``: sorted keys, ``<>&`` escaped);
* errors: gh's message (``Not Found (HTTP 404)``, GraphQL ``errors`` messages, ``HTTP 502``);
* ``--paginate``: gh up to 2.30 writes the pages one after another; from 2.31 on it joins pages
  that are JSON arrays into one array.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from github_p2p.cli.gh.gofmt import go_json, json_scalar

__all__ = [
    "MERGE_ARRAYS_SINCE",
    "JqError",
    "color_json",
    "error_message",
    "format_headers",
    "is_json",
    "join_pages",
    "jq_output",
    "run_jq",
    "sanitize_ascii",
]

#: First gh release that joins paginated JSON arrays (cli/cli#7190).
MERGE_ARRAYS_SINCE = (2, 31, 0)
_JSON_TYPE = re.compile(r"[/+]json(;|$)")
_CONTROL = re.compile(rb"\\u00([0-9a-fA-F]{2})")
_CARET = {i: f"^{chr(64 + i)}" for i in range(32)}
_CARET[0x1C] = "^\\\\"


class JqError(Exception):
    """The jq filter failed; ``message`` is jq's own."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        #: What the filter printed before it failed (gh prints that too).
        self.partial = partial


def is_json(headers: Mapping[str, str]) -> bool:
    """gh's test of a JSON answer, on ``Content-Type``."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return _JSON_TYPE.search(content_type) is not None


def _replacement(code: int) -> bytes | None:
    if code < 0x20:
        return _CARET[code].encode()
    if 0x80 <= code <= 0x9F:
        return b"\\\\" + f"{code:o}".encode()
    return None


def sanitize_ascii(body: bytes) -> bytes:
    """gh's ``sanitizeASCIIReadCloser``: ``\\u00XX`` escapes of C0/C1 controls become caret
    (``^[``) or octal (``\\\\233``) text, an escaped backslash before one doubled."""
    out = bytearray()
    escaped = False
    pos = 0
    # gh's window never looks at the last six bytes of a body.
    limit = len(body) - 6
    while pos < len(body):
        if pos < limit and body.startswith(b"\\u00", pos):
            match = _CONTROL.match(body, pos)
            replacement = _replacement(int(match.group(1), 16)) if match else None
            chunk = replacement if replacement is not None else body[pos:pos + 6]
            if escaped:
                chunk = b"\\" + chunk
                escaped = False
            out += chunk
            pos += 6
            continue
        escaped = (not escaped) if body[pos] == 0x5C else False
        out.append(body[pos])
        pos += 1
    return bytes(out)


def _canonical(name: str) -> str:
    # Go's CanonicalMIMEHeaderKey: first letter and each letter after a hyphen upper case.
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def format_headers(status: int, headers: Mapping[str, str]) -> bytes:
    """``gh api -i``: status line, sorted canonical headers, empty line."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}\n"]
    for name in sorted(_canonical(k) for k in headers):
        value = next(v for k, v in headers.items() if _canonical(k) == name)
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


def error_message(body: bytes, status: int) -> str:
    """gh's ``parseErrorResponse`` of a JSON body (``""`` when it names no error)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(parsed, dict):
        return ""
    message = parsed.get("message") if isinstance(parsed.get("message"), str) else ""
    errors = parsed.get("errors")
    if isinstance(errors, str) and errors:
        return f"{errors} ({message})" if message else errors
    if message:
        return f"{message} (HTTP {status})"
    if not isinstance(errors, list):
        return ""
    texts = [e.get("message", "") if isinstance(e, dict) else e
             for e in errors if isinstance(e, (dict, str))]
    return "\n".join(str(t) for t in texts if isinstance(t, str)) if texts else ""


def run_jq(jq: str, expression: str, body: bytes, *, timeout: float = 60.0) -> list[Any]:
    """The results of ``expression`` over one JSON document, decoded (numbers as floats)."""
    try:
        done = subprocess.run([jq, "--compact-output", expression], input=body,
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise JqError(f"jq could not run: {exc}") from exc
    values = [json.loads(line, parse_int=float) for line in done.stdout.splitlines() if line]
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or "jq failed"
        raise JqError(message, jq_output(values))
    return values


def jq_output(values: Sequence[Any]) -> bytes:
    """go-gh's ``jq.Evaluate`` printing of filter results."""
    lines = []
    for value in values:
        scalar = json_scalar(value)
        lines.append((scalar if scalar is not None else go_json(value)) + "\n")
    return "".join(lines).encode()


_DELIM, _KEY, _NULL, _STRING, _BOOL = "1;38", "1;34", "36", "32", "33"


def _paint(code: str, text: str) -> str:
    return f"\x1b[{code}m{text}\x1b[m"


class _Number(str):
    """A number kept as written (gh decodes with UseNumber)."""


def _tokens(value: Any, more: bool) -> list[tuple[str, Any, bool]]:
    """gh's decoder tokens: (kind, value, whether the container goes on after it)."""
    if isinstance(value, (dict, list)):
        opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
        out: list[tuple[str, Any, bool]] = [("open", opener, bool(value))]
        items = list(value.items()) if isinstance(value, dict) else list(value)
        for i, item in enumerate(items):
            last = i == len(items) - 1
            if isinstance(value, dict):
                out.append(("key", item[0], True))
                out.extend(_tokens(item[1], not last))
            else:
                out.extend(_tokens(item, not last))
        out.append(("close", closer, more))
        return out
    return [("value", value, more)]


def _scalar(value: Any) -> tuple[str, str]:
    if isinstance(value, _Number):
        return "", str(value)
    if value is None:
        return _NULL, "null"
    if isinstance(value, bool):
        return _BOOL, "true" if value else "false"
    return _STRING, json.dumps(value, ensure_ascii=False)


def color_json(body: bytes) -> bytes:
    """gh's ``jsoncolor.Write`` with a two-space indent (output for a terminal)."""
    try:
        document = json.loads(body, parse_int=_Number, parse_float=_Number)
    except ValueError:
        return body
    out: list[str] = []
    depth = 0
    for kind, value, more in _tokens(document, False):
        if kind == "open":
            depth += 1
            out.append(_paint(_DELIM, value))
            if more:
                out.append("\n" + "  " * depth)
            continue
        if kind == "close":
            depth -= 1
            out.append(_paint(_DELIM, value))
        elif kind == "key":
            out.append(_paint(_KEY, json.dumps(value, ensure_ascii=False)))
            out.append(_paint(_DELIM, ":") + " ")
            continue
        else:
            code, text = _scalar(value)
            out.append(_paint(code, text) if code else text)
        if more:
            out.append(_paint(_DELIM, ",") + "\n" + "  " * depth)
        elif depth > 0:
            out.append("\n" + "  " * (depth - 1))
        else:
            out.append("\n")
    return "".join(out).encode()


def _array_items(body: bytes) -> bytes | None:
    """The bytes between an array page's brackets; ``None`` if the page is not an array."""
    text = body.strip()
    if not (text.startswith(b"[") and text.endswith(b"]")):
        return None
    try:
        if not isinstance(json.loads(text), list):
            return None
    except ValueError:
        return None
    return text[1:-1].strip()


def join_pages(pages: Sequence[bytes], gh_version: tuple[int, int, int] | None) -> bytes:
    """The output of ``gh api --paginate`` for these page bodies."""
    if gh_version is not None and gh_version < MERGE_ARRAYS_SINCE:
        return b"".join(pages)
    items = [_array_items(page) for page in pages]
    if len(pages) > 1 and all(item is not None for item in items):
        return b"[" + b",".join(item for item in items if item) + b"]"
    return b"".join(pages)
