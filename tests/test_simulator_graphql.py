"""The simulator's GraphQL API, driven over real HTTP: schema, pagination, points, budgets,
mutations that the REST side sees, and records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

TOKEN = "ghp_graphqlreader"
OTHER = "ghp_someoneelse"

PULLS = """
query($owner: String!, $repo: String!, $first: Int, $after: String) {
  repository(owner: $owner, name: $repo) {
    pullRequests(first: $first, after: $after, states: [OPEN, MERGED],
                 orderBy: {field: CREATED_AT, direction: DESC}) {
      totalCount
      nodes { number title state }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    with GitHubSimulator(SimulatorConfig(rate_limit=200)) as simulator:
        yield simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def post(http: requests.Session, sim: GitHubSimulator, query: str, token: str | None = TOKEN,
         path: str = "/graphql", **variables: Any) -> requests.Response:
    headers = {"Authorization": f"bearer {token}"} if token else {}
    return http.post(sim.url + path, json={"query": query, "variables": variables},
                     headers=headers)


def data(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_cursor_pagination_walks_every_pull_request_once(sim: GitHubSimulator,
                                                         http: requests.Session) -> None:
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        page = data(post(http, sim, PULLS, owner="octo", repo="hello", first=5,
                         after=after))["repository"]["pullRequests"]
        pages += 1
        seen.extend(node["number"] for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert len(seen) == page["totalCount"] == 12  # the seeded pull requests, all states
    assert pages == 3
    rest = http.get(sim.url + "/repos/octo/hello/pulls?state=all&per_page=100",
                    headers={"Authorization": f"bearer {TOKEN}"}).json()
    assert seen == [pull["number"] for pull in rest]  # the same data as the REST side


def test_connection_limits_like_github(sim: GitHubSimulator, http: requests.Session) -> None:
    too_many = post(http, sim, PULLS, owner="o", repo="r", first=101).json()
    assert too_many["errors"][0]["message"] == (
        "Requesting 101 records on the `pullRequests` connection exceeds the `first` limit of "
        "100 records.")
    unbounded = post(http, sim, '{ repository(owner: "o", name: "r") { issues { nodes { id } } '
                                '} }').json()
    assert "You must provide a `first` or `last` value" in unbounded["errors"][0]["message"]
    # A count alone needs no page size (gh's `repo view --json issues` asks exactly that).
    counted = data(post(http, sim, '{ repository(owner: "o", name: "r") { '
                                   "issues(states: OPEN) { totalCount } } }"))
    rest = http.get(sim.url + "/repos/o/r/issues?per_page=100",
                    headers={"Authorization": f"bearer {TOKEN}"}).json()
    assert counted["repository"]["issues"]["totalCount"] == len(rest)


def test_points_headers_and_records(sim: GitHubSimulator, http: requests.Session) -> None:
    # The example of GitHub's documentation: 1 + 100 + 5,000 requests = 51 points.
    docs_example = """{ viewer { login repositories(first: 100) { edges { node { id
        issues(first: 50) { edges { node { id labels(first: 60) { edges { node { id name } }
        } } } } } } } } rateLimit { cost remaining used limit } }"""
    expensive = post(http, sim, docs_example)
    assert expensive.status_code == 200
    simple = post(http, sim, "{ viewer { login } rateLimit { cost remaining used } }")
    body = data(simple)
    assert body["rateLimit"] == {"cost": 1, "remaining": 200 - 52, "used": 52}
    assert body["viewer"]["login"].startswith("user-")
    headers = simple.headers
    assert headers["x-ratelimit-resource"] == "graphql"
    assert (headers["x-ratelimit-used"], headers["x-ratelimit-remaining"]) == ("52", "148")
    # REST keeps its own budget.
    rest = http.get(sim.url + "/repos/o/r", headers={"Authorization": f"bearer {TOKEN}"})
    assert (rest.headers["x-ratelimit-resource"], rest.headers["x-ratelimit-used"]) == ("core",
                                                                                       "1")
    graphql = [r for r in sim.records() if r.path == "/graphql"]
    assert [(r.method, r.resource, r.cost, r.counted) for r in graphql] == [
        ("POST", "graphql", 51, True), ("POST", "graphql", 1, True)]
    assert sim.upstream_count("/graphql", method="POST") == 2
    limits = http.get(sim.url + "/rate_limit", headers={"Authorization": f"bearer {TOKEN}"})
    assert limits.json()["resources"]["graphql"]["used"] == 52


def test_exhausted_budget_answers_200_with_an_error(http: requests.Session) -> None:
    with GitHubSimulator(SimulatorConfig(rate_limit=2)) as sim:
        for _ in range(2):
            data(post(http, sim, "{ viewer { login } }"))
        refused = post(http, sim, "{ viewer { login } }")
        assert refused.status_code == 200 and refused.headers["x-ratelimit-remaining"] == "0"
        assert refused.json()["errors"][0]["type"] == "RATE_LIMIT"
        assert not sim.records()[-1].counted
        data(post(http, sim, "{ viewer { login } }", token=OTHER))  # another token's budget


def test_authentication_errors_and_the_enterprise_path(sim: GitHubSimulator,
                                                       http: requests.Session) -> None:
    anonymous = post(http, sim, "{ viewer { login } }", token=None)
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "This endpoint requires you to be authenticated."
    assert data(post(http, sim, "{ viewer { login } }", path="/api/graphql"))["viewer"]
    assert [r.path for r in sim.records()] == ["/graphql", "/graphql"]
    not_json = http.post(sim.url + "/graphql", data=b"{nope",
                         headers={"Authorization": f"bearer {TOKEN}"})
    assert not_json.status_code == 400 and not_json.json()["message"] == "Problems parsing JSON"
    unknown = post(http, sim, '{ repository(owner: "o", name: "r") { nope } }').json()
    assert "data" not in unknown and "nope" in unknown["errors"][0]["message"]
    syntax = post(http, sim, "{ repository(").json()
    assert syntax["errors"][0]["locations"] == [{"line": 1, "column": 14}]
    assert http.get(sim.url + "/graphql").status_code == 404  # GraphQL is POST only


def test_viewer_and_viewer_fields_depend_on_the_token(sim: GitHubSimulator,
                                                      http: requests.Session) -> None:
    query = ('{ viewer { login isViewer } repository(owner: "octo", name: "hello") { '
             "viewerPermission } }")
    one, two = data(post(http, sim, query)), data(post(http, sim, query, token=OTHER))
    assert one["viewer"]["login"] != two["viewer"]["login"] and one["viewer"]["isViewer"]
    bot = data(post(http, sim, "{ viewer { login } }", token="ghs_installation01"))
    assert bot["viewer"]["login"] == "github-actions[bot]"


def test_mutations_change_what_rest_serves(sim: GitHubSimulator, http: requests.Session) -> None:
    repo = data(post(http, sim, '{ repository(owner: "octo", name: "hello") { id } }'))
    created = data(post(http, sim, """
        mutation($input: CreateIssueInput!) { createIssue(input: $input) {
          clientMutationId issue { id number title state author { login } } } }""",
                        input={"repositoryId": repo["repository"]["id"], "title": "From GraphQL",
                               "clientMutationId": "m1"}))["createIssue"]
    issue = created["issue"]
    assert created["clientMutationId"] == "m1" and issue["state"] == "OPEN"
    rest = http.get(f"{sim.url}/repos/octo/hello/issues/{issue['number']}").json()
    assert rest["title"] == "From GraphQL" and rest["node_id"] == issue["id"]
    commented = data(post(http, sim, """
        mutation($id: ID!) { addComment(input: {subjectId: $id, body: "hi"}) {
          commentEdge { node { body } } subject { id } } }""", id=issue["id"]))
    assert commented["addComment"]["commentEdge"]["node"]["body"] == "hi"
    data(post(http, sim, "mutation($id: ID!) { closeIssue(input: {issueId: $id}) { issue { state "
                         "} } }", id=issue["id"]))
    rest = http.get(f"{sim.url}/repos/octo/hello/issues/{issue['number']}").json()
    assert (rest["state"], rest["comments"]) == ("closed", 1)
    missing = post(http, sim, 'mutation { closeIssue(input: {issueId: "nope"}) { clientMutationId '
                              "} }").json()
    assert missing["errors"][0]["type"] == "NOT_FOUND"
    assert missing["data"] == {"closeIssue": None}


def test_issue_lists_agree_with_rest_and_filter(sim: GitHubSimulator,
                                                http: requests.Session) -> None:
    query = """query($states: [IssueState!], $author: String) {
      repository(owner: "octo", name: "hello") {
        issues(first: 100, states: $states, filterBy: {createdBy: $author},
               orderBy: {field: CREATED_AT, direction: DESC}) {
          totalCount nodes { number title state labels(first: 10) { nodes { name } } } } } }"""
    nodes = data(post(http, sim, query, states=["OPEN"]))["repository"]["issues"]["nodes"]
    rest = http.get(sim.url + "/repos/octo/hello/issues?per_page=100").json()
    assert [(n["number"], n["title"], [lb["name"] for lb in n["labels"]["nodes"]])
            for n in nodes] == [(i["number"], i["title"], [lb["name"] for lb in i["labels"]])
                                for i in rest]
    hubot = data(post(http, sim, query, states=["OPEN", "CLOSED"], author="hubot"))
    rest_all = http.get(sim.url + "/repos/octo/hello/issues?state=all&per_page=100").json()
    assert hubot["repository"]["issues"]["totalCount"] == sum(
        1 for i in rest_all if i["user"]["login"] == "hubot")


def test_releases_and_unknown_numbers(sim: GitHubSimulator, http: requests.Session) -> None:
    body = data(post(http, sim, """{ repository(owner: "octo", name: "hello") {
        latestRelease { tagName isLatest } releases(last: 2) { nodes { tagName isPrerelease } }
        } }"""))["repository"]
    rest_latest = http.get(sim.url + "/repos/octo/hello/releases/latest").json()
    assert body["latestRelease"] == {"tagName": rest_latest["tag_name"], "isLatest": True}
    assert [r["tagName"] for r in body["releases"]["nodes"]] == ["v1.7.0", "v1.8.0"]
    missing = post(http, sim, '{ repository(owner: "octo", name: "hello") { '
                              "pullRequest(number: 999) { title } } }").json()
    assert missing["data"] == {"repository": {"pullRequest": None}}
    assert missing["errors"][0]["path"] == ["repository", "pullRequest"]
