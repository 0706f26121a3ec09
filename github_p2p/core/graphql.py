"""GraphQL requests (pure): parse a request body, normalise it for a cache key, and decide.

A GitHub GraphQL call is ``POST /graphql`` with ``{"query", "variables", "operationName"}``.
:func:`parse_request` reads such a body with graphql-core and gives a :class:`GraphQLRequest`:
the selected operation and its kind, the normalised query text (``print_ast`` of the selected
operation and the fragments it reaches, so whitespace, commas, comments, block strings, the
operation's name, unused operations and fragment order make no difference) and a canonical
encoding of the variables (defaults filled in, keys sorted). Two requests GitHub must answer
identically get the same :attr:`GraphQLRequest.key_material`.

Decisions are values, made from the parsed request alone:

* :func:`query_policy`: may the answer be cached, for how long (a TTL family, with the reasons),
  is it caller-dependent (``viewer``, ``viewer*`` and ``isViewer`` fields, ``rateLimit``) so it
  must never be shared across tokens, and which repositories it reads;
* :func:`mutation_targets`: which repositories a mutation touches where that can be known
  (``repositoryNameWithOwner``, ``owner``/``name`` pairs, ``repositoryId``), so their cached
  GraphQL answers can be forgotten.

Bad input raises :class:`~github_p2p.errors.GraphQLRequestError`; callers then pass the request
to GitHub uncached and let GitHub word the error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from graphql import GraphQLError, parse, print_ast
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    visit,
)
from graphql.utilities import value_from_ast_untyped

from github_p2p.errors import GraphQLRequestError

__all__ = [
    "FAMILY_TTLS",
    "MAX_BODY_BYTES",
    "FieldSite",
    "GraphQLPolicy",
    "GraphQLRequest",
    "MutationTargets",
    "OperationKind",
    "mutation_targets",
    "parse_request",
    "query_policy",
]

#: Bounds that keep a hostile body from costing more than a real one: GitHub's own limit on a
#: query is far below these.
MAX_BODY_BYTES = 512 * 1024
MAX_TOKENS = 50_000
MAX_FIELDS = 10_000
MAX_DEPTH = 64

#: Seconds an answer stays fresh, by family; ``0`` means never cached. Repository metadata
#: and releases change rarely, lists of pull requests and issues often; the schema almost never.
FAMILY_TTLS: Mapping[str, float] = {
    "schema": 3600.0,
    "repository": 300.0,
    "releases": 300.0,
    "accounts": 300.0,
    "pull_requests": 60.0,
    "issues": 60.0,
    "git": 60.0,
    "search": 60.0,
    "nodes": 60.0,
    "viewer": 60.0,
    "default": 60.0,
    "rate_limit": 0.0,
}

# Fields under `repository` that name a family of their own (the most volatile one wins).
_REPOSITORY_FAMILIES: Mapping[str, str] = {
    "pullRequests": "pull_requests",
    "pullRequest": "pull_requests",
    "issues": "issues",
    "issue": "issues",
    "issueOrPullRequest": "issues",
    "releases": "releases",
    "release": "releases",
    "latestRelease": "releases",
    "refs": "git",
    "ref": "git",
    "defaultBranchRef": "git",
    "object": "git",
}
_ROOT_FAMILIES: Mapping[str, str] = {
    "repository": "repository",
    "viewer": "viewer",
    "rateLimit": "rate_limit",
    "__schema": "schema",
    "__type": "schema",
    "search": "search",
    "node": "nodes",
    "nodes": "nodes",
    "user": "accounts",
    "organization": "accounts",
    "repositoryOwner": "accounts",
}


class OperationKind(str, Enum):
    """The three GraphQL operation types."""

    QUERY = "query"
    MUTATION = "mutation"
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class FieldSite:
    """One field the operation selects: its path of field names from the root (aliases do not
    matter here) and its arguments with the variables filled in."""

    path: tuple[str, ...]
    arguments: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The field's own name."""
        return self.path[-1]


@dataclass(frozen=True)
class GraphQLRequest:
    """A parsed GraphQL request, ready for a cache key and for decisions."""

    query: str
    #: The selected operation's name in the document (``None`` when anonymous).
    operation_name: str | None
    kind: OperationKind
    #: The selected operation and the fragments it reaches, printed by graphql-core.
    normalised: str
    #: The variables as sent plus the operation's defaults, as canonical JSON.
    variables_key: str
    variables: Mapping[str, Any] = field(repr=False, compare=False)
    #: Every field the operation selects, fragments expanded, in document order.
    fields: tuple[FieldSite, ...] = field(repr=False, compare=False)

    @property
    def key_material(self) -> str:
        """What identifies the answer: normalised text and canonical variables."""
        return self.normalised + "\n" + self.variables_key

    @property
    def is_query(self) -> bool:
        """True for a query (the only kind that may be cached)."""
        return self.kind is OperationKind.QUERY


@dataclass(frozen=True)
class GraphQLPolicy:
    """What to do with a query's answer: a value, carried out by the cache."""

    cacheable: bool
    family: str
    ttl: float
    #: The answer depends on the token that asked: never share it across tokens.
    per_caller: bool
    #: ``owner/name`` (lower case) of every repository the query reads by name.
    repositories: frozenset[str]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MutationTargets:
    """What a mutation touches, as far as its arguments tell."""

    #: ``owner/name`` (lower case) named in the arguments.
    repositories: frozenset[str]
    #: Node ids of repositories (``repositoryId``): known, but not by name.
    repository_ids: frozenset[str]
    #: Node ids of other subjects (issues, pull requests, comments, ...).
    subject_ids: frozenset[str]

    @property
    def fully_known(self) -> bool:
        """True when every repository touched is named: invalidating those is enough."""
        return bool(self.repositories) and not self.repository_ids and not self.subject_ids


# -- parsing ------------------------------------------------------------------------------------


def _load_body(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise GraphQLRequestError(f"GraphQL request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise GraphQLRequestError("GraphQL request body is not JSON") from exc
    if not isinstance(data, dict):
        raise GraphQLRequestError("GraphQL request body must be a JSON object")
    return data


def _select(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise GraphQLRequestError("GraphQL document has no operation")
    if name is None:
        if len(operations) > 1:
            raise GraphQLRequestError(
                "GraphQL document has several operations and no operationName")
        return operations[0]
    for operation in operations:
        if operation.name is not None and operation.name.value == name:
            return operation
    raise GraphQLRequestError(f"GraphQL document has no operation named {name!r}")


class _Walk:
    """Expands fragments and records every field, within bounds."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: dict[str, Any]) -> None:
        self.fragments = fragments
        self.variables = variables
        self.sites: list[FieldSite] = []
        self.used: set[str] = set()

    def selections(self, selection_set: SelectionSetNode | None, path: tuple[str, ...],
                   active: frozenset[str]) -> None:
        if selection_set is None:
            return
        if len(path) > MAX_DEPTH:
            raise GraphQLRequestError(f"GraphQL query is nested deeper than {MAX_DEPTH}")
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, path, active)
            elif isinstance(selection, InlineFragmentNode):
                self.selections(selection.selection_set, path, active)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise GraphQLRequestError(f"GraphQL fragment {name!r} is not defined")
                if name in active:
                    raise GraphQLRequestError(f"GraphQL fragment {name!r} spreads itself")
                self.used.add(name)
                self.selections(fragment.selection_set, path, active | {name})

    def field(self, node: FieldNode, path: tuple[str, ...], active: frozenset[str]) -> None:
        if len(self.sites) >= MAX_FIELDS:
            raise GraphQLRequestError(f"GraphQL query selects more than {MAX_FIELDS} fields")
        here = (*path, node.name.value)
        arguments = {arg.name.value: value_from_ast_untyped(arg.value, self.variables)
                     for arg in node.arguments or ()}
        self.sites.append(FieldSite(here, arguments))
        self.selections(node.selection_set, here, active)


class _Canonical(Visitor):
    """Writes every string as a plain string literal: a block string with the same value
    asks GitHub the same question."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> StringValueNode | None:
        if not node.block:
            return None
        return StringValueNode(value=node.value, block=False)


def _variables(raw: Any, operation: OperationDefinitionNode) -> dict[str, Any]:
    if raw is None:
        variables: dict[str, Any] = {}
    elif isinstance(raw, dict):
        variables = dict(raw)
    else:
        raise GraphQLRequestError("GraphQL variables must be a JSON object")
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in variables and definition.default_value is not None:
            variables[name] = value_from_ast_untyped(definition.default_value)
    return variables


def parse_request(body: bytes | str | Mapping[str, Any]) -> GraphQLRequest:
    """Parse a GraphQL request body (bytes, text or an already decoded mapping).

    Raises :class:`GraphQLRequestError` for anything GitHub would refuse or that this module
    cannot read safely (extra top-level keys included: they could change the answer).
    """
    data = _load_body(body)
    unknown = set(data) - {"query", "variables", "operationName"}
    if unknown:
        raise GraphQLRequestError(f"GraphQL request has unknown keys: {', '.join(sorted(unknown))}")
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise GraphQLRequestError("GraphQL request has no query")
    name = data.get("operationName") or None
    if name is not None and not isinstance(name, str):
        raise GraphQLRequestError("GraphQL operationName must be a string")
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        raise GraphQLRequestError(f"GraphQL query does not parse: {exc.message}") from exc
    operation = _select(document, name)
    variables = _variables(data.get("variables"), operation)
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    walk = _Walk(fragments, variables)
    walk.selections(operation.selection_set, (), frozenset())
    # The name only picks the operation; GitHub's answer does not depend on it.
    anonymous = OperationDefinitionNode(
        operation=operation.operation, name=None,
        variable_definitions=operation.variable_definitions,
        directives=operation.directives, selection_set=operation.selection_set)
    used = [fragments[n] for n in sorted(walk.used)]
    reduced = DocumentNode(definitions=(anonymous, *used))
    try:
        variables_key = json.dumps(variables, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise GraphQLRequestError("GraphQL variables are not plain JSON") from exc
    return GraphQLRequest(
        query=query,
        operation_name=operation.name.value if operation.name is not None else None,
        kind=OperationKind(operation.operation.value),
        normalised=print_ast(visit(reduced, _Canonical())),
        variables_key=variables_key,
        variables=variables,
        fields=tuple(walk.sites),
    )


# -- decisions ----------------------------------------------------------------------------------


def _caller_reasons(request: GraphQLRequest) -> list[str]:
    reported: list[tuple[str, ...]] = []
    for site in request.fields:
        name = site.name
        dependent = name == "rateLimit" or name.startswith("viewer") or name == "isViewer"
        if dependent and not any(site.path[:len(done)] == done for done in reported):
            reported.append(site.path)
    return [f"{'.'.join(path)} depends on the token that asks" for path in reported]


def _repository(arguments: Mapping[str, Any]) -> str | None:
    owner = arguments.get("owner")
    name = arguments.get("name", arguments.get("repo", arguments.get("repositoryName")))
    if isinstance(owner, str) and isinstance(name, str) and owner and name:
        return f"{owner}/{name}".lower()
    return None


def _family_of(site: FieldSite) -> str | None:
    if len(site.path) == 1:
        return _ROOT_FAMILIES.get(site.name, "default" if site.name != "__typename" else None)
    if site.path[0] == "repository" and len(site.path) == 2:
        return _REPOSITORY_FAMILIES.get(site.name)
    return None


def query_policy(request: GraphQLRequest,
                 ttls: Mapping[str, float] = FAMILY_TTLS) -> GraphQLPolicy:
    """Decide whether and how long a query's answer may be cached, and for whom.

    The family is the most volatile one the query touches (``repository { pullRequests }``
    is a pull-request list, not repository metadata). Mutations and subscriptions are never
    cacheable.
    """
    repositories = frozenset(
        repo for site in request.fields
        if site.path == ("repository",) and (repo := _repository(site.arguments)) is not None)
    caller = _caller_reasons(request)
    if not request.is_query:
        return GraphQLPolicy(False, request.kind.value, 0.0, bool(caller), repositories,
                             (f"a {request.kind.value} is never cached", *caller))
    found: dict[str, str] = {}
    for site in request.fields:
        family = _family_of(site)
        if family is not None and family not in found:
            found[family] = ".".join(site.path)
    if not found:
        found["default"] = "no field GitHub would answer with data"
    # On a tie the later, more specific family names it (`repository { releases }`).
    family = min(reversed(found), key=lambda name: ttls.get(name, ttls.get("default", 60.0)))
    ttl = float(ttls.get(family, ttls.get("default", 60.0)))
    reasons = [f"{path} is {name} ({ttls.get(name, ttls.get('default', 60.0)):g} s)"
               for name, path in found.items()]
    reasons.extend(caller)
    if ttl <= 0:
        reasons.append(f"{family} answers are live: never cached")
    return GraphQLPolicy(ttl > 0, family, ttl, bool(caller), repositories, tuple(reasons))


def _collect(value: Any, found: tuple[set[str], set[str], set[str]]) -> None:
    repositories, repository_ids, subject_ids = found
    if isinstance(value, list):
        for item in value:
            _collect(item, found)
        return
    if not isinstance(value, dict):
        return
    named = _repository(value)
    if named is not None:
        repositories.add(named)
    for key, item in value.items():
        if key == "repositoryNameWithOwner" and isinstance(item, str) and "/" in item:
            repositories.add(item.lower())
        elif key in ("repositoryId", "repositoryIds"):
            ids = item if isinstance(item, list) else [item]
            repository_ids.update(i for i in ids if isinstance(i, str))
        elif (key.endswith("Id") or key.endswith("Ids")) and key not in ("clientMutationId",):
            ids = item if isinstance(item, list) else [item]
            subject_ids.update(i for i in ids if isinstance(i, str))
        else:
            _collect(item, found)


def mutation_targets(request: GraphQLRequest) -> MutationTargets:
    """The repositories (and node ids) a mutation's arguments name.

    ``createIssue(input: {repositoryId: …})`` names a repository by id; ``createCommitOnBranch(
    input: {branch: {repositoryNameWithOwner: "o/r"}})`` by name; ``addComment(input:
    {subjectId: …})`` only an issue's id. A query touches nothing.
    """
    found: tuple[set[str], set[str], set[str]] = (set(), set(), set())
    if request.kind is OperationKind.MUTATION:
        for site in request.fields:
            if len(site.path) == 1:
                _collect(dict(site.arguments), found)
    return MutationTargets(*(frozenset(items) for items in found))
