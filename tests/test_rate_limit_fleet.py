"""Rate limits and the fleet (issue 12, finding 6), with real processes.

Before: a 429 without ``retry-after`` held a request 60 s although a stale answer was at hand,
and three runners made 12 calls during one secondary limit, each finding the limit for itself.
Now the first runner to meet the limit answers stale at once and tells the hub, which relays
the limit with every lease reply: the other runners answer stale without calling GitHub.
"""

from __future__ import annotations

import time

from test_faults_support import START, auth, contents, get, node_stats, session, start_peers

from github_p2p.testing.localfleet import LocalFleet


def test_one_secondary_limit_costs_the_fleet_one_call(sim, tmp_path):
    policy = tmp_path / "policy.yml"
    # The test's resources go stale after 1 s, so a stale answer is at hand.
    policy.write_text("rules:\n  - pattern: '/contents/limited/'\n    ttl: 1\n")
    paths = contents("limited", 6)
    with LocalFleet(sim.url, workdir=tmp_path,
                    extra_env={"GITHUB_P2P_POLICY": str(policy)}) as fleet:
        fleet.start_hub(timeout=START)
        runners = start_peers(fleet, 3)
        for index, runner in enumerate(runners):
            for path in paths:
                assert get(runner, path, f"ghs_r{index}").status_code == 200
        sim.reset_records()
        time.sleep(1.2)  # past the 1 s freshness: every entry is stale now
        # GitHub answers a secondary limit without retry-after to whatever comes next.
        sim.secondary_limit_next(12, retry_after=None, status=429)
        started = time.monotonic()
        outcomes = []
        for index, runner in enumerate(runners):
            for path in paths:
                answer = get(runner, path, f"ghs_r{index}")
                assert answer.status_code == 200
                outcomes.append(answer.headers["X-GitHub-P2P-Cache"])
        elapsed = time.monotonic() - started
    assert set(outcomes) == {"stale"}
    assert len(sim.records()) == 1  # the one probe: the fleet learnt the limit from it
    assert elapsed < 30  # no request sat out the 60 s a limit without retry-after implies


def test_without_a_stale_answer_a_short_limit_is_waited_out(sim, tmp_path):
    with LocalFleet(sim.url, workdir=tmp_path) as fleet:
        runner = fleet.start_peer(bootstrap="")
        sim.secondary_limit_next(1, retry_after=1, status=403)
        answer = session().get(runner.endpoint + "/repos/octo/hello",
                               headers=auth("ghs_alone"), timeout=60)
        assert answer.status_code == 200
        records = sim.records()
        assert [r.status for r in records] == [403, 200]
        assert records[1].timestamp - records[0].timestamp >= 1.0
        assert node_stats(runner)["api_calls_made"] == 2
