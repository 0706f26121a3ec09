"""Printing a served ``gh api`` answer exactly as gh would (non-tty output).

* one page: the body as received;
* ``--paginate``: gh up to 2.30 writes the pages one after another; from 2.31 on it joins
  pages that are JSON arrays into one array (other pages still follow each other);
* ``--jq``: the filter runs on each page; strings print raw, other values as compact JSON
  with sorted keys (gh's gojq). The wrapper runs the ``jq`` program with the same options.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

__all__ = ["MERGE_ARRAYS_SINCE", "JqError", "join_pages", "run_jq"]

#: First gh release that joins paginated JSON arrays (cli/cli#7190).
MERGE_ARRAYS_SINCE = (2, 31, 0)


class JqError(Exception):
    """The jq filter failed; ``message`` is jq's own."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def run_jq(jq: str, expression: str, body: bytes, *, timeout: float = 60.0) -> bytes:
    """Apply ``expression`` to one JSON document like gh's ``--jq``."""
    try:
        done = subprocess.run([jq, "--raw-output", "--compact-output", "--sort-keys",
                               expression], input=body, capture_output=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise JqError(f"jq could not run: {exc}") from exc
    if done.returncode != 0:
        raise JqError(done.stderr.decode("utf-8", "replace").strip() or "jq failed")
    return done.stdout
