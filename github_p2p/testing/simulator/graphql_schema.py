"""The simulator's GraphQL schema: the part of GitHub's that the product and ``gh`` read.

Names, types and nullability follow GitHub's public schema, so a query GitHub accepts for these
objects is accepted here, and a field GitHub does not have is refused the same way (a validation
error in a ``200`` answer). Types only ``gh``'s ``--json`` fields need and that carry no data
here (projects, reviews, check runs, ...) are left out: asking for them is an error, not a lie.
"""

from __future__ import annotations

from graphql import GraphQLSchema, build_schema

__all__ = ["SDL", "build"]

_CONNECTION_ARGS = "first: Int, after: String, last: Int, before: String"

_TEMPLATE = """
scalar DateTime
scalar URI
scalar GitObjectID
scalar HTML

enum IssueState { OPEN CLOSED }
enum IssueStateReason { COMPLETED NOT_PLANNED REOPENED }
enum IssueClosedStateReason { COMPLETED NOT_PLANNED }
enum PullRequestState { OPEN CLOSED MERGED }
enum MergeableState { MERGEABLE CONFLICTING UNKNOWN }
enum OrderDirection { ASC DESC }
enum IssueOrderField { CREATED_AT UPDATED_AT COMMENTS }
enum ReleaseOrderField { CREATED_AT NAME }
enum LabelOrderField { NAME CREATED_AT }
enum RepositoryVisibility { PRIVATE PUBLIC INTERNAL }
enum RepositoryPermission { ADMIN MAINTAIN WRITE TRIAGE READ }
enum SubscriptionState { UNSUBSCRIBED SUBSCRIBED IGNORED }
enum PullRequestMergeMethod { MERGE SQUASH REBASE }
enum MilestoneState { OPEN CLOSED }
enum RepositoryPrivacy { PUBLIC PRIVATE }
enum RepositoryAffiliation { OWNER COLLABORATOR ORGANIZATION_MEMBER }
enum RepositoryOrderField { CREATED_AT UPDATED_AT PUSHED_AT NAME STARGAZERS }
enum ReactionContent { THUMBS_UP THUMBS_DOWN LAUGH HOORAY CONFUSED HEART ROCKET EYES }
enum CommentAuthorAssociation {
  MEMBER OWNER MANNEQUIN COLLABORATOR CONTRIBUTOR FIRST_TIME_CONTRIBUTOR FIRST_TIMER NONE
}

input IssueOrder { field: IssueOrderField!, direction: OrderDirection! }
input ReleaseOrder { field: ReleaseOrderField!, direction: OrderDirection! }
input RepositoryOrder { field: RepositoryOrderField!, direction: OrderDirection! }
input LabelOrder { field: LabelOrderField!, direction: OrderDirection! }
input IssueFilters {
  assignee: String, createdBy: String, mentioned: String, labels: [String!],
  milestone: String, since: DateTime, states: [IssueState!], viewerSubscribed: Boolean
}

interface Node { id: ID! }
interface Actor {
  login: String!
  avatarUrl(size: Int): URI!
  resourcePath: URI!
  url: URI!
}
interface RepositoryOwner {
  id: ID!
  login: String!
  avatarUrl(size: Int): URI!
  resourcePath: URI!
  url: URI!
  repository(name: String!, followRenames: Boolean = true): Repository
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type User implements Node & Actor & RepositoryOwner {
  id: ID!
  databaseId: Int
  login: String!
  name: String
  email: String!
  bio: String
  company: String
  location: String
  avatarUrl(size: Int): URI!
  resourcePath: URI!
  url: URI!
  createdAt: DateTime!
  updatedAt: DateTime!
  isViewer: Boolean!
  isSiteAdmin: Boolean!
  repository(name: String!, followRenames: Boolean = true): Repository
  repositories(
    %(connection)s, privacy: RepositoryPrivacy, ownerAffiliations: [RepositoryAffiliation],
    isFork: Boolean, orderBy: RepositoryOrder
  ): RepositoryConnection!
}

type Bot implements Node & Actor {
  id: ID!
  databaseId: Int
  login: String!
  avatarUrl(size: Int): URI!
  resourcePath: URI!
  url: URI!
  createdAt: DateTime!
}

type UserEdge { cursor: String!, node: User }
type UserConnection {
  totalCount: Int!
  nodes: [User]
  edges: [UserEdge]
  pageInfo: PageInfo!
}

type ReactingUserConnection { totalCount: Int!, pageInfo: PageInfo! }
type ReactionGroup {
  content: ReactionContent!
  users(%(connection)s): ReactingUserConnection!
  viewerHasReacted: Boolean!
}

type Label implements Node {
  id: ID!
  name: String!
  color: String!
  description: String
  isDefault: Boolean!
  url: URI!
}
type LabelEdge { cursor: String!, node: Label }
type LabelConnection {
  totalCount: Int!
  nodes: [Label]
  edges: [LabelEdge]
  pageInfo: PageInfo!
}

type Milestone implements Node {
  id: ID!
  number: Int!
  title: String!
  description: String
  dueOn: DateTime
  state: MilestoneState!
  url: URI!
}

type IssueComment implements Node {
  id: ID!
  databaseId: Int
  body: String!
  author: Actor
  authorAssociation: CommentAuthorAssociation!
  createdAt: DateTime!
  updatedAt: DateTime!
  url: URI!
  includesCreatedEdit: Boolean!
  isMinimized: Boolean!
  minimizedReason: String
  reactionGroups: [ReactionGroup!]
  viewerDidAuthor: Boolean!
}
type IssueCommentEdge { cursor: String!, node: IssueComment }
type IssueCommentConnection {
  totalCount: Int!
  nodes: [IssueComment]
  edges: [IssueCommentEdge]
  pageInfo: PageInfo!
}

type Issue implements Node {
  id: ID!
  databaseId: Int
  number: Int!
  title: String!
  body: String!
  state: IssueState!
  stateReason: IssueStateReason
  closed: Boolean!
  closedAt: DateTime
  createdAt: DateTime!
  updatedAt: DateTime!
  locked: Boolean!
  url: URI!
  resourcePath: URI!
  author: Actor
  authorAssociation: CommentAuthorAssociation!
  labels(%(connection)s, orderBy: LabelOrder): LabelConnection
  assignees(%(connection)s): UserConnection!
  comments(%(connection)s): IssueCommentConnection!
  milestone: Milestone
  repository: Repository!
  reactionGroups: [ReactionGroup!]
  viewerDidAuthor: Boolean!
}
type IssueEdge { cursor: String!, node: Issue }
type IssueConnection {
  totalCount: Int!
  nodes: [Issue]
  edges: [IssueEdge]
  pageInfo: PageInfo!
}

type Commit implements Node {
  id: ID!
  oid: GitObjectID!
  abbreviatedOid: String!
  messageHeadline: String!
  url: URI!
}

type PullRequest implements Node {
  id: ID!
  databaseId: Int
  number: Int!
  title: String!
  body: String!
  state: PullRequestState!
  closed: Boolean!
  closedAt: DateTime
  merged: Boolean!
  mergedAt: DateTime
  mergedBy: Actor
  createdAt: DateTime!
  updatedAt: DateTime!
  locked: Boolean!
  isDraft: Boolean!
  url: URI!
  resourcePath: URI!
  author: Actor
  authorAssociation: CommentAuthorAssociation!
  baseRefName: String!
  baseRefOid: GitObjectID!
  headRefName: String!
  headRefOid: GitObjectID!
  headRepository: Repository
  headRepositoryOwner: RepositoryOwner
  isCrossRepository: Boolean!
  maintainerCanModify: Boolean!
  mergeable: MergeableState!
  additions: Int!
  deletions: Int!
  changedFiles: Int!
  mergeCommit: Commit
  potentialMergeCommit: Commit
  labels(%(connection)s, orderBy: LabelOrder): LabelConnection
  assignees(%(connection)s): UserConnection!
  comments(%(connection)s): IssueCommentConnection!
  milestone: Milestone
  repository: Repository!
  reactionGroups: [ReactionGroup!]
  viewerDidAuthor: Boolean!
}
type PullRequestEdge { cursor: String!, node: PullRequest }
type PullRequestConnection {
  totalCount: Int!
  nodes: [PullRequest]
  edges: [PullRequestEdge]
  pageInfo: PageInfo!
}

union IssueOrPullRequest = Issue | PullRequest

type Release implements Node {
  id: ID!
  databaseId: Int
  name: String
  tagName: String!
  description: String
  isDraft: Boolean!
  isPrerelease: Boolean!
  isLatest: Boolean!
  createdAt: DateTime!
  publishedAt: DateTime
  url: URI!
  author: User
}
type ReleaseEdge { cursor: String!, node: Release }
type ReleaseConnection {
  totalCount: Int!
  nodes: [Release]
  edges: [ReleaseEdge]
  pageInfo: PageInfo!
}

type Ref implements Node {
  id: ID!
  name: String!
  prefix: String!
  target: Commit
}

type Language implements Node { id: ID!, name: String!, color: String }
type License implements Node {
  id: ID!
  key: String!
  name: String!
  nickname: String
  spdxId: String
  url: URI
}
type Topic implements Node { id: ID!, name: String! }
type RepositoryTopic implements Node { id: ID!, topic: Topic!, url: URI! }
type RepositoryTopicConnection {
  totalCount: Int!
  nodes: [RepositoryTopic]
  pageInfo: PageInfo!
}

type Repository implements Node {
  id: ID!
  databaseId: Int
  name: String!
  nameWithOwner: String!
  owner: RepositoryOwner!
  description: String
  homepageUrl: URI
  url: URI!
  sshUrl: String!
  mirrorUrl: URI
  resourcePath: URI!
  openGraphImageUrl: URI!
  usesCustomOpenGraphImage: Boolean!
  securityPolicyUrl: URI
  createdAt: DateTime!
  pushedAt: DateTime
  updatedAt: DateTime!
  visibility: RepositoryVisibility!
  isPrivate: Boolean!
  isArchived: Boolean!
  isDisabled: Boolean!
  isEmpty: Boolean!
  isFork: Boolean!
  isInOrganization: Boolean!
  isLocked: Boolean!
  isMirror: Boolean!
  isTemplate: Boolean!
  isBlankIssuesEnabled: Boolean!
  isSecurityPolicyEnabled: Boolean
  isUserConfigurationRepository: Boolean!
  hasIssuesEnabled: Boolean!
  hasProjectsEnabled: Boolean!
  hasWikiEnabled: Boolean!
  hasDiscussionsEnabled: Boolean!
  mergeCommitAllowed: Boolean!
  squashMergeAllowed: Boolean!
  rebaseMergeAllowed: Boolean!
  deleteBranchOnMerge: Boolean!
  forkCount: Int!
  stargazerCount: Int!
  diskUsage: Int
  parent: Repository
  templateRepository: Repository
  defaultBranchRef: Ref
  primaryLanguage: Language
  licenseInfo: License
  viewerCanAdminister: Boolean!
  viewerHasStarred: Boolean!
  viewerPermission: RepositoryPermission
  viewerSubscription: SubscriptionState
  viewerDefaultMergeMethod: PullRequestMergeMethod!
  repositoryTopics(%(connection)s): RepositoryTopicConnection!
  watchers(%(connection)s): UserConnection!
  assignableUsers(%(connection)s, query: String): UserConnection!
  mentionableUsers(%(connection)s, query: String): UserConnection!
  labels(%(connection)s, orderBy: LabelOrder, query: String): LabelConnection
  issues(
    %(connection)s, states: [IssueState!], labels: [String!], orderBy: IssueOrder,
    filterBy: IssueFilters
  ): IssueConnection!
  issue(number: Int!): Issue
  pullRequests(
    %(connection)s, states: [PullRequestState!], labels: [String!], headRefName: String,
    baseRefName: String, orderBy: IssueOrder
  ): PullRequestConnection!
  pullRequest(number: Int!): PullRequest
  issueOrPullRequest(number: Int!): IssueOrPullRequest
  releases(%(connection)s, orderBy: ReleaseOrder): ReleaseConnection!
  release(tagName: String!): Release
  latestRelease: Release
}

type RepositoryEdge { cursor: String!, node: Repository }
type RepositoryConnection {
  totalCount: Int!
  nodes: [Repository]
  edges: [RepositoryEdge]
  pageInfo: PageInfo!
}

type RateLimit {
  cost: Int!
  limit: Int!
  nodeCount: Int!
  remaining: Int!
  resetAt: DateTime!
  used: Int!
}

type Query {
  repository(owner: String!, name: String!, followRenames: Boolean = true): Repository
  repositoryOwner(login: String!): RepositoryOwner
  user(login: String!): User
  viewer: User!
  rateLimit(dryRun: Boolean = false): RateLimit
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
}

input CreateIssueInput {
  repositoryId: ID!
  title: String!
  body: String
  labelIds: [ID!]
  assigneeIds: [ID!]
  milestoneId: ID
  clientMutationId: String
}
type CreateIssuePayload { clientMutationId: String, issue: Issue }

input AddCommentInput { subjectId: ID!, body: String!, clientMutationId: String }
type AddCommentPayload {
  clientMutationId: String
  commentEdge: IssueCommentEdge
  subject: Node
}

input CloseIssueInput {
  issueId: ID!
  stateReason: IssueClosedStateReason
  clientMutationId: String
}
type CloseIssuePayload { clientMutationId: String, issue: Issue }

input ReopenIssueInput { issueId: ID!, clientMutationId: String }
type ReopenIssuePayload { clientMutationId: String, issue: Issue }

type Mutation {
  createIssue(input: CreateIssueInput!): CreateIssuePayload
  addComment(input: AddCommentInput!): AddCommentPayload
  closeIssue(input: CloseIssueInput!): CloseIssuePayload
  reopenIssue(input: ReopenIssueInput!): ReopenIssuePayload
}
"""
SDL = _TEMPLATE.replace("%(connection)s", _CONNECTION_ARGS)


def build() -> GraphQLSchema:
    """A fresh schema object (cheap enough to build once per simulator)."""
    return build_schema(SDL)
