"""Unit tests of the pure GraphQL module: parsing, normalisation, policy, mutation targets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from github_p2p.core.graphql import (
    FAMILY_TTLS,
    MAX_BODY_BYTES,
    OperationKind,
    mutation_targets,
    parse_request,
    query_policy,
)
from github_p2p.errors import GitHubP2PError, GraphQLRequestError

# The query `gh pr list --json number,title` sends (gh 2.23), as captured from the real gh.
GH_PR_LIST = """
    query PullRequestList(
        $owner: String!,
        $repo: String!,
        $limit: Int!,
        $endCursor: String,
        $baseBranch: String,
        $headBranch: String,
        $state: [PullRequestState!] = OPEN
    ) {
        repository(owner: $owner, name: $repo) {
            pullRequests(
                states: $state,
                baseRefName: $baseBranch,
                headRefName: $headBranch,
                first: $limit,
                after: $endCursor,
                orderBy: {field: CREATED_AT, direction: DESC}
            ) {
                totalCount
                nodes {
                    number,title
                }
                pageInfo {
                    hasNextPage
                    endCursor
                }
            }
        }
    }"""


def body(query: str, variables: Any = None, name: str | None = None) -> bytes:
    data: dict[str, Any] = {"query": query}
    if variables is not None:
        data["variables"] = variables
    if name is not None:
        data["operationName"] = name
    return json.dumps(data).encode()


# -- parsing and normalisation -----------------------------------------------------------------

def test_layout_comments_commas_names_and_defaults_do_not_change_the_key() -> None:
    sent = parse_request(body(GH_PR_LIST, {"owner": "octo", "repo": "hello", "limit": 30}))
    compact = ("# the same question, written differently\n"
               "query Other($owner:String!,$repo:String!,$limit:Int!,$endCursor:String,"
               "$baseBranch:String,$headBranch:String,$state:[PullRequestState!]=OPEN)"
               "{repository(owner:$owner,name:$repo){pullRequests(states:$state,"
               "baseRefName:$baseBranch,headRefName:$headBranch,first:$limit,after:$endCursor,"
               "orderBy:{field:CREATED_AT,direction:DESC}){totalCount nodes{number title}"
               "pageInfo{hasNextPage endCursor}}}}")
    other = parse_request(body(compact, {"limit": 30, "repo": "hello", "owner": "octo",
                                         "state": "OPEN"}))
    assert sent.kind is OperationKind.QUERY and sent.is_query
    assert sent.operation_name == "PullRequestList"
    assert sent.key_material == other.key_material
    assert sent.variables_key == ('{"limit":30,"owner":"octo","repo":"hello","state":"OPEN"}')
    assert sent.normalised.startswith("query ($owner: String!")
    assert "nodes {\n        number\n        title\n      }" in sent.normalised


def test_block_strings_unused_operations_and_fragment_order_do_not_matter() -> None:
    doc = """
        fragment B on Repository { stargazerCount }
        query Wanted {
          repository(owner: "o", name: "r") { ...A ...B description(x: \"\"\"v\"\"\") }
        }
        query Unused { viewer { login } }
        fragment A on Repository { name }
        fragment C on Repository { forkCount }
    """
    picked = parse_request(body(doc, name="Wanted"))
    plain = parse_request(body(
        'fragment A on Repository { name } fragment B on Repository { stargazerCount } '
        '{ repository(owner: "o", name: "r") { ...A ...B description(x: "v") } }'))
    assert picked.key_material == plain.key_material
    assert "Unused" not in picked.normalised and "forkCount" not in picked.normalised
    assert [s.path for s in picked.fields] == [
        ("repository",), ("repository", "name"), ("repository", "stargazerCount"),
        ("repository", "description")]


@pytest.mark.parametrize("change", [
    {"variables": {"owner": "octo", "repo": "other", "limit": 30}},
    {"variables": {"owner": "octo", "repo": "hello", "limit": 31}},
    {"query": GH_PR_LIST.replace("number,title", "number title url")},
    {"query": GH_PR_LIST.replace("number,title", "n: number,title")},
])
def test_anything_that_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    base = {"query": GH_PR_LIST, "variables": {"owner": "octo", "repo": "hello", "limit": 30}}
    changed = {**base, **change}
    assert parse_request(base).key_material != parse_request(changed).key_material


def test_variables_not_declared_stay_in_the_key() -> None:
    # GitHub may answer differently (or refuse); never merge such a request with another.
    one = parse_request(body("{ viewer { login } }"))
    two = parse_request(body("{ viewer { login } }", {"extra": 1}))
    assert one.key_material != two.key_material


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"variables": {}}', "no query"),
    (b'{"query": "   "}', "no query"),
    (b'{"query": 5}', "no query"),
    (b'{"query": "{ a "}', "does not parse"),
    (b'{"query": "{ a }", "variables": "{}"}', "variables must be a JSON object"),
    (b'{"query": "{ a }", "operationName": 3}', "operationName must be a string"),
    (b'{"query": "{ a }", "extensions": {}}', "unknown keys: extensions"),
    (b'{"query": "query A { a } query B { b }"}', "several operations"),
    (b'{"query": "query A { a }", "operationName": "B"}', "no operation named 'B'"),
    (b'{"query": "fragment F on Q { a }"}', "no operation"),
    (b'{"query": "{ ...F }"}', "fragment 'F' is not defined"),
    (b'{"query": "{ ...F } fragment F on Q { ...G } fragment G on Q { ...F }"}',
     "spreads itself"),
    (b'{"query": "{ a }", "variables": {"x": NaN}}', "not plain JSON"),
    (b"\xff\xfe", "not JSON"),
])
def test_bad_input_raises_the_package_error(raw: bytes, message: str) -> None:
    with pytest.raises(GraphQLRequestError, match=message) as caught:
        parse_request(raw)
    assert isinstance(caught.value, GitHubP2PError)


def test_bounds_on_size_depth_and_expansion() -> None:
    with pytest.raises(GraphQLRequestError, match="larger than"):
        parse_request(b" " * (MAX_BODY_BYTES + 1))
    deep = "{ " + "a { " * 70 + "b" + " }" * 71
    with pytest.raises(GraphQLRequestError, match="deeper"):
        parse_request(body(deep))
    # Each fragment spreads the next one twice: 2^20 fields if expanded blindly.
    fragments = " ".join(f"fragment F{i} on Q {{ ...F{i + 1} ...F{i + 1} }}" for i in range(20))
    with pytest.raises(GraphQLRequestError, match="more than"):
        parse_request(body("{ ...F0 } " + fragments + " fragment F20 on Q { a }"))
    with pytest.raises(GraphQLRequestError, match="does not parse"):
        parse_request(body("{ " + "a " * 60_000 + "}"))


# -- policy --------------------------------------------------------------------------------------

def test_gh_pr_list_is_a_shared_pull_request_list() -> None:
    policy = query_policy(parse_request(body(GH_PR_LIST, {"owner": "Octo", "repo": "Hello",
                                                          "limit": 30})))
    assert policy.cacheable and not policy.per_caller
    assert policy.family == "pull_requests" and policy.ttl == FAMILY_TTLS["pull_requests"]
    assert policy.repositories == frozenset({"octo/hello"})
    assert "repository.pullRequests is pull_requests (60 s)" in policy.reasons


@pytest.mark.parametrize(("query", "family", "ttl"), [
    ('{ repository(owner: "o", name: "r") { name description stargazerCount } }',
     "repository", 300),
    ('{ repository(owner: "o", name: "r") { releases(first: 5) { nodes { tagName } } } }',
     "releases", 300),
    ('{ repository(owner: "o", name: "r") { name issues(first: 5) { totalCount } } }',
     "issues", 60),
    ('{ search(query: "repo:o/r", type: ISSUE, first: 5) { issueCount } }', "search", 60),
    ('{ __type(name: "PullRequest") { fields(includeDeprecated: true) { name } } }',
     "schema", 3600),
    ("{ __typename }", "default", 60),
    ('{ node(id: "I_1") { id } }', "nodes", 60),
])
def test_ttl_family_is_the_most_volatile_part(query: str, family: str, ttl: float) -> None:
    policy = query_policy(parse_request(body(query)))
    assert (policy.family, policy.ttl, policy.cacheable) == (family, ttl, True)
    assert not policy.per_caller


@pytest.mark.parametrize("query", [
    "{ viewer { login } }",
    '{ repository(owner: "o", name: "r") { name viewerPermission } }',
    '{ user(login: "u") { isViewer } }',
    '{ repository(owner: "o", name: "r") { ...F } } fragment F on Repository { viewerHasStarred }',
])
def test_caller_dependent_answers_are_never_shared(query: str) -> None:
    policy = query_policy(parse_request(body(query)))
    assert policy.per_caller and policy.cacheable
    assert any("depends on the token" in reason for reason in policy.reasons)


def test_rate_limit_is_live_and_per_caller() -> None:
    policy = query_policy(parse_request(body(
        '{ rateLimit { cost remaining } repository(owner: "o", name: "r") { name } }')))
    assert not policy.cacheable and policy.per_caller and policy.family == "rate_limit"
    assert policy.reasons[-1] == "rate_limit answers are live: never cached"


def test_ttls_can_be_overridden() -> None:
    ttls = {**FAMILY_TTLS, "repository": 0.0}
    policy = query_policy(parse_request(body('{ repository(owner: "o", name: "r") { name } }')),
                          ttls)
    assert not policy.cacheable and policy.ttl == 0


# -- mutations ----------------------------------------------------------------------------------

def test_mutations_and_subscriptions_are_never_cacheable() -> None:
    for text in ("mutation { addStar(input: {starrableId: \"R_1\"}) { clientMutationId } }",
                 "subscription { x }"):
        request = parse_request(body(text))
        assert not request.is_query and not query_policy(request).cacheable


def test_mutation_targets_by_name_by_id_and_by_subject() -> None:
    by_name = parse_request(body(
        "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) "
        "{ commit { oid } } }",
        {"input": {"branch": {"repositoryNameWithOwner": "Octo/Hello", "branchName": "main"},
                   "expectedHeadOid": "abc", "clientMutationId": "x"}}))
    targets = mutation_targets(by_name)
    assert targets.repositories == frozenset({"octo/hello"}) and targets.fully_known
    by_id = mutation_targets(parse_request(body(
        'mutation { createIssue(input: {repositoryId: "R_kgDO1", title: "t", '
        'labelIds: ["L_1"]}) { issue { number } } }')))
    assert by_id.repository_ids == frozenset({"R_kgDO1"})
    assert by_id.subject_ids == frozenset({"L_1"}) and not by_id.fully_known
    by_subject = mutation_targets(parse_request(body(
        'mutation { addComment(input: {subjectId: "I_1", body: "b"}) { clientMutationId } }')))
    assert by_subject.repositories == frozenset() and by_subject.subject_ids == {"I_1"}
    pair = mutation_targets(parse_request(body(
        'mutation { a: x(owner: "O", name: "N") { y } b: x(input: {owner: "p", repo: "q"}) '
        "{ y } }")))
    assert pair.repositories == frozenset({"o/n", "p/q"})
    assert mutation_targets(parse_request(body(GH_PR_LIST))).repositories == frozenset()
