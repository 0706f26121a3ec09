"""Every freshness family: its example path, its TTL and its sharing, and the docs table.

The families live in ``github_p2p/core/policy.py``; docs/freshness.md is the users' view of
them, and this test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from github_p2p.core.policy import DEFAULT_FAMILIES, Sharing, TtlPolicy, load_policy

POLICY = TtlPolicy()
SHA = "0123456789abcdef0123456789abcdef01234567"
DOCS = (Path(__file__).resolve().parents[1] / "docs" / "freshness.md").read_text()


@pytest.mark.parametrize("family", DEFAULT_FAMILIES, ids=lambda f: f.name)
def test_each_family_owns_its_example_and_is_documented(family):
    assert POLICY.family(family.example) is family
    ttl = POLICY.ttl(family.example, (), 200)
    expected = (None if family.ttl == 0 else
                POLICY.immutable_ttl if family.ttl is None else family.ttl)
    assert ttl == expected
    row = next((line for line in DOCS.splitlines() if line.startswith(f"| {family.name} |")),
               None)
    assert row is not None, f"docs/freshness.md has no row for {family.name}"
    if family.ttl == 0:
        assert "never cached" in row
    elif family.ttl is None:
        assert "7 days (immutable)" in row
    else:
        assert f"{family.ttl:g} s" in row
    assert f"| {'none' if family.ttl == 0 else family.sharing.value} |" in row


@pytest.mark.parametrize("sub", ["check-runs", "check-suites", "status", "statuses", "comments",
                                 "pulls", "branches-where-head"])
def test_what_hangs_off_a_commit_is_short_lived_not_immutable(sub):
    path = f"/repos/o/r/commits/{SHA}/{sub}"
    assert POLICY.ttl(path, (), 200) == 10


@pytest.mark.parametrize("path,query", [
    (f"/repos/o/r/git/blobs/{SHA}", ()),
    (f"/repos/o/r/git/trees/{SHA}", ()),
    (f"/repos/o/r/git/commits/{SHA}", ()),
    (f"/repos/o/r/git/tags/{SHA}", ()),
    (f"/repos/o/r/commits/{SHA}", ()),
    (f"/repos/o/r/compare/{SHA}...{SHA[::-1]}", ()),
    ("/repos/o/r/contents/src/app.py", (("ref", SHA),)),
    ("/repos/o/r/readme", (("ref", SHA),)),
])
def test_only_sha_addressed_content_is_immutable(path, query):
    assert POLICY.ttl(path, query, 200) == POLICY.immutable_ttl


@pytest.mark.parametrize("path,query", [
    ("/repos/o/r/contents/src/app.py", (("ref", "main"),)),
    ("/repos/o/r/compare/main...feature", ()),
    (f"/repos/o/r/compare/main...{SHA}", ()),
    (f"/repos/o/r/commits/{SHA[:12]}", ()),
    (f"/repos/o/r/issues/{SHA}", ()),
])
def test_a_branch_or_short_sha_is_not_immutable(path, query):
    assert POLICY.ttl(path, query, 200) != POLICY.immutable_ttl


def test_statuses_and_sharing():
    assert POLICY.ttl("/repos/o/r", (), 404) == 30
    for status in (401, 403, 429, 500, 502):
        assert POLICY.ttl("/repos/o/r", (), status) is None
    assert POLICY.sharing("/user") is Sharing.TOKEN
    assert POLICY.sharing("/rate_limit") is Sharing.NONE
    assert POLICY.bypass("GET", "/repos/o/r/zipball/main")
    assert POLICY.sharing("/repos/o/r/issues") is Sharing.FLEET


def test_a_policy_file_rule_comes_first_and_may_set_sharing(tmp_path):
    file = tmp_path / "policy.yml"
    file.write_text("rules:\n  - pattern: '^/orgs/[^/]+/members'\n    ttl: 120\n"
                    "    sharing: token\n  - pattern: '^/repos/[^/]+/[^/]+$'\n    ttl: 5\n")
    policy = load_policy(file)
    assert policy.ttl("/orgs/x/members", (), 200) == 120
    assert policy.sharing("/orgs/x/members") is Sharing.TOKEN
    assert policy.ttl("/repos/o/r", (), 200) == 5
