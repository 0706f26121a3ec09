"""The GraphQL queries the real gh sends, against the simulator and the pure GraphQL module.

``tests/data/gh-2.23-graphql.json`` holds the request bodies Debian's gh 2.23 sent to the
simulator for each command (captured by running gh against it); they are replayed here without
gh, and, where gh is installed, gh itself runs against the simulator.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from gh_support import REAL_GH, gh_environment, needs_real_gh

from github_p2p.core.graphql import parse_request, query_policy
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

CAPTURED = json.loads((Path(__file__).parent / "data" / "gh-2.23-graphql.json").read_text())
TOKEN = "ghp_ghgraphql01"
REPO = "octo/hello"


def _bodies() -> list[tuple[str, dict[str, Any]]]:
    return [(" ".join(command["argv"][:2]), body)
            for command in CAPTURED["commands"] for body in command["requests"]]


@pytest.mark.parametrize(("command", "body"), _bodies())
def test_the_simulator_answers_every_captured_gh_query(command: str, body: dict[str, Any]
                                                       ) -> None:
    with GitHubSimulator(SimulatorConfig()) as sim, requests.Session() as http:
        http.trust_env = False
        if "id" in (body.get("variables") or {}):
            # gh learnt this node id from its previous answer: render that object first.
            http.post(sim.url + "/graphql", json={"query": '{ repository(owner: "octo", name: '
                                                  '"hello") { issue(number: 3) { id } } }'},
                      headers={"Authorization": f"token {TOKEN}"})
        answer = http.post(sim.url + "/api/graphql", json=body,
                           headers={"Authorization": f"token {TOKEN}"})
        assert answer.status_code == 200 and answer.headers["x-ratelimit-resource"] == "graphql"
        assert "errors" not in answer.json(), (command, answer.json())
        assert sim.records()[-1].cost == 1  # gh's queries are all "simple" ones


@pytest.mark.parametrize(("command", "family"), [
    ("pr list", "pull_requests"), ("issue list", "issues"), ("repo view", "repository"),
    ("pr view", "pull_requests"), ("release list", "releases")])
def test_gh_queries_classify_by_family_and_are_shared(command: str, family: str) -> None:
    bodies = [body for name, body in _bodies() if name == command]
    policy = query_policy(parse_request(bodies[-1]))
    assert (policy.family, policy.cacheable, policy.per_caller) == (family, True, False)
    assert policy.repositories == frozenset({REPO})


def test_gh_feature_detection_is_a_schema_query() -> None:
    detection = next(body for name, body in _bodies() if name == "issue list")
    policy = query_policy(parse_request(detection))
    assert (policy.family, policy.ttl) == ("schema", 3600.0)


@needs_real_gh
def test_real_gh_json_commands_read_the_simulator_over_graphql(
        https_sim: GitHubSimulator, tls: tuple[Path, ssl.SSLContext], tmp_path: Path) -> None:
    assert REAL_GH is not None
    env = gh_environment(https_sim, tls[0], tmp_path, TOKEN)

    def gh(*argv: str) -> Any:
        done = subprocess.run([REAL_GH, *argv], env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    with requests.Session() as http:
        http.verify = str(tls[0])
        auth = {"Authorization": f"token {TOKEN}"}
        rest_pulls = http.get(f"{https_sim.url}/repos/{REPO}/pulls", headers=auth).json()
        rest_issues = http.get(f"{https_sim.url}/repos/{REPO}/issues?per_page=100",
                               headers=auth).json()
        rest_repo = http.get(f"{https_sim.url}/repos/{REPO}", headers=auth).json()
    https_sim.reset_records()
    pulls = gh("pr", "list", "-R", REPO, "--json", "number,title")
    assert pulls == [{"number": p["number"], "title": p["title"]} for p in rest_pulls]
    issues = gh("issue", "list", "-R", REPO, "-L", "100", "--json", "number,title,author")
    assert [(i["number"], i["title"], i["author"]["login"]) for i in issues] == [
        (i["number"], i["title"], i["user"]["login"]) for i in rest_issues]
    repo = gh("repo", "view", REPO, "--json", "name,owner,description,url,stargazerCount")
    assert repo == {"name": rest_repo["name"], "owner": {"id": rest_repo["owner"]["node_id"],
                                                         "login": rest_repo["owner"]["login"]},
                    "description": rest_repo["description"], "url": rest_repo["html_url"],
                    "stargazerCount": rest_repo["stargazers_count"]}
    records = https_sim.records()
    # pr list: one query; issue list: feature detection, then the list; repo view: one.
    assert [(r.method, r.path, r.resource, r.cost) for r in records] == [
        ("POST", "/graphql", "graphql", 1)] * 4
