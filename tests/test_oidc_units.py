"""The pieces of GitHub OIDC admission, against the simulator's issuer and Actions runtime (real
HTTP, real RS256 signatures): the hub's verifier, the runner's token source, the Hello field,
and the repository scopes a hub maps ids into."""

from __future__ import annotations

import dataclasses
import time

import jwt
import pytest

from github_p2p.errors import AdmissionError, ConfigError, LocalProtocolError
from github_p2p.nodes.hub.admission import (
    GITHUB_ISSUER,
    HubAdmission,
    OidcSettings,
    OidcVerifier,
    scope_key,
)
from github_p2p.nodes.oidc import OidcRequest, OidcTokenSource
from github_p2p.p2p.messages import MAX_TOKEN, Get, Hello, Put
from github_p2p.p2p.queue_messages import QueueClaim
from github_p2p.p2p.wire import decode_body, encode

AUD = "github-p2p-fleet"
REPO = "octo/hello"


def token_for(sim, repository=REPO, audience=AUD, **options) -> str:
    env = sim.oidc_job(repository, **options)
    request = OidcRequest(audience, env["ACTIONS_ID_TOKEN_REQUEST_URL"],
                          env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
    return OidcTokenSource(request).token()


def verifier(sim, **changes) -> OidcVerifier:
    return OidcVerifier(OidcSettings(AUD, sim.oidc_issuer, **changes))


def test_a_runtime_token_is_verified_and_names_the_job(sim):
    token = token_for(sim)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == AUD and claims["repository"] == REPO
    assert claims["iss"] == sim.oidc_issuer and claims["exp"] > claims["iat"]
    admission = verifier(sim).verify(token)
    assert admission.repository == REPO
    assert admission.subject == f"repo:{REPO}:ref:refs/heads/main"
    assert sim.records() == []  # the issuer and the runtime are not API calls


@pytest.mark.parametrize(("options", "audience", "reason"), [
    ({}, "someone-else", "another audience"),
    ({"lifetime": -120}, AUD, "expired"),
    ({"foreign_key": True}, AUD, "signature does not verify"),
    ({"issuer": GITHUB_ISSUER}, AUD, "another issuer"),
])
def test_bad_tokens_are_refused_with_the_reason(sim, options, audience, reason):
    token = token_for(sim, audience=audience, **options)
    with pytest.raises(AdmissionError, match=reason) as refused:
        verifier(sim).verify(token)
    assert token not in str(refused.value)


def test_not_a_jwt_and_an_unknown_key_are_refused(sim):
    with pytest.raises(AdmissionError, match="not a JWT"):
        verifier(sim).verify("a.b.c")
    good = token_for(sim)
    unsigned = jwt.encode(jwt.decode(good, options={"verify_signature": False}),
                          "k" * 32, algorithm="HS256")
    with pytest.raises(AdmissionError, match="RS256"):
        verifier(sim).verify(unsigned)


def test_keys_are_cached_and_refetched_for_a_rotated_key_only_once(sim):
    check = verifier(sim)
    assert check.verify(token_for(sim)).repository == REPO
    assert check.verify(token_for(sim)).repository == REPO
    assert sim.oidc.jwks_served == 1  # cached
    sim.oidc.rotate()
    assert check.verify(token_for(sim)).repository == REPO  # unknown kid: one refetch
    assert sim.oidc.jwks_served == 2
    # Made-up key ids cannot make the hub fetch again and again.
    good = token_for(sim)
    claims = jwt.decode(good, options={"verify_signature": False})
    for n in range(5):
        forged = jwt.encode(claims, sim.oidc._keys[-1].private, algorithm="RS256",
                            headers={"kid": f"made-up-{n}"})
        with pytest.raises(AdmissionError, match="does not publish"):
            check.verify(forged)
    assert sim.oidc.jwks_served == 2  # the rotation's refresh, then none for 30 s


def test_an_issuer_that_does_not_answer_is_the_hubs_problem_not_a_crash(sim):
    dead = "http://127.0.0.1:1/_services/token"
    check = OidcVerifier(OidcSettings(AUD, dead, fetch_timeout=2))
    with pytest.raises(AdmissionError, match="cannot read its OIDC issuer"):
        check.verify(token_for(sim, issuer=dead))


@pytest.mark.parametrize("kwargs", [
    {"audience": ""}, {"audience": " padded "}, {"audience": "a\nb"},
    {"audience": AUD, "issuer": "http://token.example"},  # plain http off loopback
    {"audience": AUD, "issuer": "https://token.example/"},
    {"audience": AUD, "issuer": "ftp://token.example"},
])
def test_oidc_settings_are_checked(kwargs):
    with pytest.raises(ConfigError):
        OidcSettings(**kwargs)


def test_the_token_source_renews_shortly_before_expiry(sim):
    env = sim.oidc_job(REPO, lifetime=300)
    now = [time.time()]
    source = OidcTokenSource(OidcRequest(AUD, env["ACTIONS_ID_TOKEN_REQUEST_URL"],
                                         env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]),
                             clock=lambda: now[0], renew_before=60)
    first = source.token()
    assert source.token() == first and source.fetched == 1
    now[0] += 239
    assert source.token() == first
    now[0] += 2  # within a minute of expiry: a new one
    assert source.token() != first and source.fetched == 2
    assert source.token(fresh=True) and source.fetched == 3
    assert "oidc-request" not in repr(source.request)


def test_the_token_source_says_why_it_has_no_token(sim):
    env = sim.oidc_job(REPO)
    wrong = OidcRequest(AUD, env["ACTIONS_ID_TOKEN_REQUEST_URL"], "not-the-request-token")
    with pytest.raises(AdmissionError, match="HTTP 401"):
        OidcTokenSource(wrong).token()
    assert OidcRequest.from_env({}) == (None, None)
    request, warning = OidcRequest.from_env({"GITHUB_P2P_OIDC_AUDIENCE": AUD})
    assert request is None and warning is not None and "id-token: write" in warning


def test_hello_carries_a_bounded_token_that_is_never_printed(sim):
    token = token_for(sim)
    hello = Hello(1, "runner", "X64", "r1", "1.0", token)
    assert token not in repr(hello)
    frame = encode(hello)
    assert decode_body(frame[frame.index(b"\x01\x01"):]) == hello
    assert Hello(2, "runner", "X64", "r1", "1.0").token is None
    for bad in ("x" * (MAX_TOKEN + 1), "not a jwt", "a.b", ""):
        with pytest.raises(LocalProtocolError):
            Hello(1, "runner", "X64", "r1", "1.0", bad)


async def test_a_stream_is_bound_to_its_repository(sim):
    policy = HubAdmission(OidcSettings(AUD, sim.oidc_issuer), bytes(range(32)))
    ident = bytes(range(32, 64))
    mine, theirs, stranger = policy.gate(), policy.gate(), policy.gate()
    assert (await stranger.check(Get(1, ident))).code == "unauthorized"  # type: ignore[union-attr]
    refused = await stranger.check(Hello(2, "runner", "X64", "r", "1"))
    assert refused is not None and "none was presented" in refused.message
    assert await mine.check(Hello(3, "runner", "X64", "r", "1", token_for(sim))) is None
    assert await theirs.check(Hello(4, "runner", "X64", "r", "1",
                                    token_for(sim, "octo/other"))) is None
    put = Put(5, ident, b"sealed", 60, 60, tag=ident)
    mapped, elsewhere = mine.inbound(put), theirs.inbound(put)
    assert isinstance(mapped, Put) and isinstance(elsewhere, Put)
    assert len({ident, mapped.entry_id, elsewhere.entry_id}) == 3  # same id, three places
    assert mapped.tag == mapped.entry_id and elsewhere.tag == elsewhere.entry_id
    claim = QueueClaim(9, ident, 1, "worker", 0.0)  # a work queue is per repository too
    mine_claim, their_claim = mine.inbound(claim), theirs.inbound(claim)
    assert isinstance(mine_claim, QueueClaim) and isinstance(their_claim, QueueClaim)
    assert mine_claim.queue_id == mapped.entry_id != their_claim.queue_id
    # Rate limits one repository's runners report hold back that repository only.
    limits = {mine.limit_key("core"): 2e9, theirs.limit_key("search"): 2e9}
    assert mine.visible_limits(limits) == {"core": 2e9}
    assert theirs.visible_limits(limits) == {"search": 2e9}
    # A second Hello may not move the stream to another repository.
    moved = await mine.check(Hello(6, "runner", "X64", "r", "1", token_for(sim, "octo/other")))
    assert moved is not None and moved.code == "unauthorized"
    assert scope_key(bytes(32), "Octo/Hello") == scope_key(bytes(32), "octo/hello")
    assert policy.counts == {"admitted": 2, "refused": 2}
    open_policy = HubAdmission(None, None).gate()
    assert await open_policy.check(Get(7, ident)) is None
    assert open_policy.inbound(put) is put and dataclasses.replace(put) == put
