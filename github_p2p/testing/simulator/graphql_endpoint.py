"""``POST /graphql`` (and ``/api/graphql`` on an Enterprise host): GitHub's GraphQL API over the
simulator's state.

:meth:`GraphQLApi.prepare` reads, parses and validates a request and prices it (points, as
GitHub's formula does); the service then checks the caller's GraphQL budget and calls
:meth:`GraphQLApi.execute`. Answers are ``200`` with ``data`` and/or ``errors`` as on GitHub,
except a body that is not JSON (``400``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    OverlappingFieldsCanBeMergedRule,
    execute_sync,
    parse,
    specified_rules,
    validate,
)
from graphql.language import DocumentNode, OperationDefinitionNode, OperationType

from github_p2p.testing.simulator.graphql_data import GraphContext, NodeRegistry, Objects, not_found
from github_p2p.testing.simulator.graphql_paging import query_cost
from github_p2p.testing.simulator.graphql_schema import build
from github_p2p.testing.simulator.memo import encode_json
from github_p2p.testing.simulator.router import Outcome, error_outcome
from github_p2p.testing.simulator.state import IssueChanges

__all__ = ["GRAPHQL_DOCS", "GraphQLApi", "Prepared", "graphql_errors"]

GRAPHQL_DOCS = "https://docs.github.com/graphql"
_MAX_TOKENS = 50_000
# GitHub (graphql-ruby) lets fields of one name but different types meet in fragments on
# different union members (`... on Issue { state } ... on PullRequest { state }`, which `gh issue
# view` sends); graphql-core's rule refuses that, so it is left out.
_RULES = tuple(rule for rule in specified_rules if rule is not OverlappingFieldsCanBeMergedRule)


@dataclass(frozen=True)
class Prepared:
    """A request that parsed and validated, with its price."""

    document: DocumentNode
    operation_name: str | None
    variables: dict[str, Any]
    cost: int
    node_count: int
    mutation: bool


def _error_json(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = dict(formatted.pop("extensions", None) or {})
    out: dict[str, Any] = {}
    if "type" in extensions:
        out["type"] = extensions.pop("type")
    if "path" in formatted:
        out["path"] = formatted["path"]
    if extensions:
        out["extensions"] = extensions
    if formatted.get("locations"):
        out["locations"] = formatted["locations"]
    out["message"] = formatted["message"]
    return out


def graphql_errors(*messages: str | dict[str, Any]) -> Outcome:
    """A ``200`` answer that has only ``errors``."""
    errors = [m if isinstance(m, dict) else {"message": m} for m in messages]
    return Outcome(200, raw=encode_json({"errors": errors}))


class GraphQLApi:
    """The schema, and the node ids earlier answers handed out."""

    def __init__(self) -> None:
        self._schema: GraphQLSchema = build()
        self._registry = NodeRegistry()

    def prepare(self, body: bytes) -> Prepared | Outcome:
        """Parse and validate a request body; an :class:`Outcome` when GitHub would refuse it."""
        try:
            data = json.loads(body or b"null")
        except (UnicodeDecodeError, ValueError):
            return error_outcome(400, "Problems parsing JSON", GRAPHQL_DOCS)
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return graphql_errors("A query attribute must be specified and must be a string.")
        variables = data.get("variables")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return graphql_errors("Variables are invalid JSON.")
        name = data.get("operationName") or None
        if name is not None and not isinstance(name, str):
            return graphql_errors("operationName must be a string.")
        try:
            document = parse(data["query"], max_tokens=_MAX_TOKENS)
        except GraphQLError as exc:
            return graphql_errors(_error_json(exc))
        problems = validate(self._schema, document, _RULES)
        if problems:
            return graphql_errors(*(_error_json(p) for p in problems))
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = next((op for op in operations
                       if name is None or (op.name is not None and op.name.value == name)), None)
        cost, nodes = query_cost(document, name, variables)
        mutation = chosen is not None and chosen.operation is OperationType.MUTATION
        return Prepared(document, name, variables, cost, nodes, mutation)

    def execute(self, prepared: Prepared, ctx: GraphContext) -> Outcome:
        """Run a prepared request against the state (mutations change it)."""
        objects = Objects(ctx)
        result = execute_sync(self._schema, prepared.document, self._root(objects),
                              variable_values=prepared.variables,
                              operation_name=prepared.operation_name)
        answer: dict[str, Any] = {}
        if result.data is not None:
            answer["data"] = result.data
        if result.errors:
            answer["errors"] = [_error_json(e) for e in result.errors]
        return Outcome(200, raw=encode_json(answer))

    # -- the root --------------------------------------------------------------------------

    def _root(self, objects: Objects) -> dict[str, Any]:
        ctx = objects.ctx

        def node(info: Any, id: str) -> Any:
            found = objects.node(id)
            if found is None:
                raise not_found(f"Could not resolve to a node with the global id of '{id}'.",
                                info)
            return found

        return {
            "repository": lambda _i, owner, name, followRenames=True: objects.repository(
                f"{owner}/{name}".lower()),
            "repositoryOwner": lambda _i, login: objects.user(login),
            "user": lambda _i, login: objects.user(login),
            "viewer": lambda _i: objects.user(ctx.viewer),
            "rateLimit": lambda _i, dryRun=False: objects.rate_limit(),
            "node": node,
            "nodes": lambda _i, ids: [objects.node(i) for i in ids],
            "createIssue": lambda info, input: self._create_issue(objects, info, input),
            "addComment": lambda info, input: self._add_comment(objects, info, input),
            "closeIssue": lambda info, input: self._set_state(objects, info, input, "closed"),
            "reopenIssue": lambda info, input: self._set_state(objects, info, input, "open"),
        }

    def _find(self, objects: Objects, info: Any, node_id: str, kind: str) -> tuple[str, int]:
        found = objects.ctx.registry.find(node_id)
        if found is None or found[0] != kind:
            raise not_found(f"Could not resolve to a node with the global id of '{node_id}'.",
                            info)
        return found[1], found[2]

    def _create_issue(self, objects: Objects, info: Any, data: dict[str, Any]) -> dict[str, Any]:
        repo, _ = self._find(objects, info, data["repositoryId"], "Repository")
        if data.get("labelIds") or data.get("assigneeIds") or data.get("milestoneId"):
            raise GraphQLError("labelIds, assigneeIds and milestoneId are not simulated",
                               info.field_nodes)
        ctx = objects.ctx
        issue = ctx.state.create_issue(repo, title=data["title"], body=data.get("body"),
                                       labels=(), author=ctx.viewer, now=ctx.now)
        return {"clientMutationId": data.get("clientMutationId"),
                "issue": objects.issue(repo, issue)}

    def _add_comment(self, objects: Objects, info: Any, data: dict[str, Any]) -> dict[str, Any]:
        repo, number = self._find(objects, info, data["subjectId"], "Issue")
        ctx = objects.ctx
        comment = ctx.state.add_comment(repo, number, body=data["body"], author=ctx.viewer,
                                        now=ctx.now)
        issue = ctx.state.issues(repo).get(number)
        if comment is None or issue is None:
            raise not_found(f"Could not resolve to a node with the global id of "
                            f"'{data['subjectId']}'.", info)
        return {"clientMutationId": data.get("clientMutationId"),
                "commentEdge": {"cursor": "", "node": objects.comment(comment)},
                "subject": objects.issue(repo, issue)}

    def _set_state(self, objects: Objects, info: Any, data: dict[str, Any],
                   state: str) -> dict[str, Any]:
        repo, number = self._find(objects, info, data["issueId"], "Issue")
        ctx = objects.ctx
        issue = ctx.state.update_issue(repo, number, IssueChanges(state=state), ctx.now)
        if issue is None:
            raise not_found(f"Could not resolve to a node with the global id of "
                            f"'{data['issueId']}'.", info)
        return {"clientMutationId": data.get("clientMutationId"),
                "issue": objects.issue(repo, issue)}

    @property
    def registry(self) -> NodeRegistry:
        """The node ids handed out so far."""
        return self._registry
