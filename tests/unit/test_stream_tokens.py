"""The WebSocket API's token check accepts what the HTTP API's JWT authorizer accepts and
nothing else: a signature by one of the issuer's published keys, the issuer, an audience, an
unexpired token with a subject."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from threadline.streams.tokens import REFETCH_SECONDS, TokenVerifier

ISSUER = "https://issuer.example"
AUDIENCE = "threadline"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 60,
        **overrides,
    }


class Issuer:
    def __init__(self) -> None:
        self.keys = [ECKey.generate_key("P-256", private=True)]
        self.fetches = 0

    def published(self) -> dict[str, Any]:
        self.fetches += 1
        return {
            "keys": [{**key.as_dict(private=False), "kid": key.thumbprint()} for key in self.keys]
        }

    def token(self, key: Any = None, *, without: tuple[str, ...] = (), **overrides: Any) -> str:
        key = key or self.keys[0]
        header = {"alg": "ES256" if isinstance(key, ECKey) else "RS256", "kid": key.thumbprint()}
        payload = {
            name: value for name, value in claims(**overrides).items() if name not in without
        }
        return jwt.encode(header, payload, key)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(issuer: Issuer, clock: Clock) -> TokenVerifier:
    return TokenVerifier(ISSUER, (AUDIENCE, "other"), issuer.published, monotonic=clock)


def test_a_valid_token_names_its_user(verifier: TokenVerifier, issuer: Issuer) -> None:
    assert verifier.subject(issuer.token()) == "alice"
    assert verifier.subject(issuer.token(aud="other")) == "alice"


@pytest.mark.parametrize(
    ("without", "overrides", "accepted"),
    [
        ((), {"aud": ["another-app", AUDIENCE]}, True),
        (("aud",), {"client_id": AUDIENCE}, True),  # a Cognito access token
        (("aud",), {"client_id": "another-app"}, False),
        ((), {"aud": "another-app", "client_id": AUDIENCE}, False),  # aud decides when present
        (("aud",), {}, False),
    ],
    ids=["one-of-its-audiences", "client-id", "other-client-id", "aud-first", "neither"],
)
def test_the_audience_is_checked_as_api_gateway_checks_it(
    verifier: TokenVerifier,
    issuer: Issuer,
    without: tuple[str, ...],
    overrides: dict[str, Any],
    accepted: bool,
) -> None:
    """The HTTP API's JWT authorizer takes `aud`, or `client_id` in a token without `aud`: the
    WebSocket API takes the same tokens, Cognito's access tokens among them."""
    token = issuer.token(without=without, **overrides)
    assert (verifier.subject(token) == "alice") is accepted


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://elsewhere.example"},
        {"aud": "another-app"},
        {"exp": int(time.time()) - 10},
        {"nbf": int(time.time()) + 600},
        {"sub": ""},
    ],
    ids=["issuer", "audience", "expired", "not-yet", "no-subject"],
)
def test_a_token_with_wrong_claims_is_refused(
    verifier: TokenVerifier, issuer: Issuer, overrides: dict[str, Any]
) -> None:
    assert verifier.subject(issuer.token(**overrides)) is None


def test_a_token_without_a_subject_is_refused(verifier: TokenVerifier, issuer: Issuer) -> None:
    token = jwt.encode(
        {"alg": "ES256", "kid": issuer.keys[0].thumbprint()},
        {key: value for key, value in claims().items() if key != "sub"},
        issuer.keys[0],
    )
    assert verifier.subject(token) is None


def test_a_token_signed_by_another_key_is_refused(verifier: TokenVerifier, issuer: Issuer) -> None:
    stranger = ECKey.generate_key("P-256", private=True)
    assert verifier.subject(issuer.token(stranger)) is None


def test_a_shared_secret_or_no_signature_is_refused(
    verifier: TokenVerifier, issuer: Issuer
) -> None:
    """Signed with the public key's bytes as an HMAC secret (the key-confusion attack), or
    not signed at all."""
    kid = issuer.keys[0].thumbprint()
    signing_input = f"{part({'alg': 'HS256', 'kid': kid})}.{part(claims())}"
    secret = issuer.keys[0].as_pem(private=False)
    signature = base64.urlsafe_b64encode(
        hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    ).rstrip(b"=")
    confused = f"{signing_input}.{signature.decode()}"
    unsigned = f"{part({'alg': 'none'})}.{part(claims())}."

    assert verifier.subject(confused) is None
    assert verifier.subject(unsigned) is None
    assert verifier.subject("not.a.jwt") is None


def part(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_rotated_key_is_fetched_again_but_not_on_every_request(
    verifier: TokenVerifier, issuer: Issuer, clock: Clock
) -> None:
    assert verifier.subject(issuer.token()) == "alice"
    rotated = RSAKey.generate_key(2048, private=True)
    issuer.keys.append(rotated)

    clock.now += 10
    refused_meanwhile = verifier.subject(issuer.token(rotated))
    clock.now += REFETCH_SECONDS
    accepted_later = verifier.subject(issuer.token(rotated))

    assert refused_meanwhile is None  # a stranger's key costs no fetch each time
    assert accepted_later == "alice"
    assert issuer.fetches == 2


def test_an_issuer_that_is_down_is_not_asked_on_every_request(issuer: Issuer, clock: Clock) -> None:
    def unreachable() -> dict[str, Any]:
        issuer.fetches += 1
        raise OSError("connection refused")

    verifier = TokenVerifier(ISSUER, (AUDIENCE,), unreachable, monotonic=clock)

    answers = [verifier.subject(issuer.token()) for _ in range(5)]

    assert answers == [None] * 5
    assert issuer.fetches == 1


def test_keys_fetched_before_outlive_a_failed_fetch(issuer: Issuer, clock: Clock) -> None:
    up = [True]

    def published() -> dict[str, Any]:
        if not up[0]:
            raise OSError("connection refused")
        return issuer.published()

    verifier = TokenVerifier(ISSUER, (AUDIENCE,), published, monotonic=clock)
    assert verifier.subject(issuer.token()) == "alice"
    up[0] = False
    clock.now += REFETCH_SECONDS

    stranger = verifier.subject(issuer.token(ECKey.generate_key("P-256", private=True)))
    known = verifier.subject(issuer.token())

    assert stranger is None  # its key is unknown, and the fetch for it failed
    assert known == "alice"


def test_requests_arriving_together_wait_for_the_one_fetch(issuer: Issuer) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> dict[str, Any]:
        started.set()
        release.wait(5)
        return issuer.published()

    verifier = TokenVerifier(ISSUER, (AUDIENCE,), slow)
    answers: list[str | None] = []
    first = threading.Thread(target=lambda: answers.append(verifier.subject(issuer.token())))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: answers.append(verifier.subject(issuer.token())))
    second.start()
    second.join(0.5)  # it waits for the fetch (without waiting, it would be denied by now)
    waited = second.is_alive()
    release.set()
    first.join(5)
    second.join(5)

    assert waited
    assert answers == ["alice", "alice"]
    assert issuer.fetches == 1
