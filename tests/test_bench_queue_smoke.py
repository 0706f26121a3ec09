"""A small run of ``bench/queue_makespan.py`` keeps it working (counts, never times)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ is not an installed package

from bench.queue_makespan import computed, item, make_suite, run_rounds, static_groups  # noqa: E402

pytestmark = pytest.mark.slow


def test_the_suite_and_the_computed_splits():
    suite = make_suite(200, 96.0, 7)
    assert len(suite) == 200 and sum(d for _, d in suite) == pytest.approx(96.0)
    assert sum("integration" in name for name, _ in suite) == 6
    assert [len(g) for g in static_groups(suite, 4)] == [50, 50, 50, 50]
    model = computed(suite, 4)
    assert model["ideal"] == pytest.approx(24.0)
    assert model["static_lpt_perfect_timings"] >= model["ideal"]
    assert model["static_contiguous"] > model["queue_file_order"] >= model["ideal"]


def test_both_splits_run_every_test_once(tmp_path):
    suite = make_suite(12, 1.2, 3)
    rounds = run_rounds(suite, 2, tmp_path, rounds=2)
    expected = Counter(item(*test).rsplit("@", 1)[0] for test in suite)
    assert len(rounds) == 2
    for one in rounds:
        for makespan, spans in (one.static, one.queue):
            assert Counter(span.test for span in spans) == expected
            assert makespan > 0 and all(span.start >= one.started for span in spans)
        # Which queue runner gets which test depends on timing; the static split does not.
        assert {span.runner for span in one.static[1]} == {"runner1", "runner2"}
