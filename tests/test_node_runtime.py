"""Process settings a node makes once it has started (github_p2p/nodes/runtime.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from github_p2p.nodes.runtime import NODE_GC_THRESHOLD

# In a child process: freezing the heap is for a node's whole life, not for pytest's.
_PROBE = """
import gc, json
from github_p2p.nodes.runtime import settle_heap
before = gc.get_threshold()
settle_heap()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_settle_heap_freezes_start_up_and_collects_the_young_generation_less_often() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True, timeout=60)
    probe = json.loads(out.stdout)
    assert probe["before"][0] == 700  # CPython's default: the node changes it
    assert probe["after"] == [NODE_GC_THRESHOLD, *probe["before"][1:]]
    assert probe["frozen"] > 1000  # the imported modules' objects
