"""The WebSocket API's JWT check: the same tokens the HTTP API's JWT authorizer accepts
(signature by one of the issuer's published keys, issuer, audience, expiry, a subject).

API Gateway offers JWT authorizers to HTTP APIs only, so StreamAuthorizer does it: browsers
cannot set headers on a WebSocket, so the token comes in the `token` query parameter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, MissingKeyError
from joserfc.jwk import KeySet

logger = logging.getLogger(__name__)
# Only signatures by a published (public) key: never `none` or a shared secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA")
# A token signed with a key not in the cached set fetches the set again, at most this often
# (an issuer rotating its keys publishes the new one first).
REFETCH_SECONDS = 300.0


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        audiences: tuple[str, ...],
        fetch_keys: Callable[[], dict[str, Any]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._audiences = audiences
        self._fetch_keys = fetch_keys
        self._monotonic = monotonic
        self._keys: KeySet | None = None
        self._fetching = threading.Lock()
        self._fetched_at = -REFETCH_SECONDS

    def subject(self, token: str) -> str | None:
        """The token's user (its `sub`) if the token is valid, else None."""
        claims = self.claims(token)
        subject = claims["sub"] if claims else None
        return subject if isinstance(subject, str) and subject else None

    def claims(self, token: str) -> dict[str, Any] | None:
        """The token's claims if API Gateway's JWT authorizer would accept it, else None."""
        try:
            decoded = self._decode(token)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self._issuer},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims) if self._for_us(decoded.claims) else None

    def _for_us(self, claims: dict[str, Any]) -> bool:
        """As API Gateway's JWT authorizer: `aud` names one of the audiences, or, in a token
        without `aud` (a Cognito access token), `client_id` does."""
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        named = audience if isinstance(audience, list) else [audience]
        return any(isinstance(name, str) and name in self._audiences for name in named)

    def _decode(self, token: str) -> jwt.Token:
        with self._fetching:  # one fetch at a time; the others wait for its keys
            if self._keys is None:
                self._refetched()
        try:
            return jwt.decode(token, self._keys or KeySet([]), algorithms=ALGORITHMS)
        except (InvalidKeyIdError, MissingKeyError):
            with self._fetching:
                if not self._refetched():
                    raise
            return jwt.decode(token, self._keys or KeySet([]), algorithms=ALGORITHMS)

    def _refetched(self) -> bool:
        """Fetch the key set again if the last fetch is REFETCH_SECONDS old; whether it was.
        A failed fetch keeps the keys fetched before (an issuer that is down does not make
        tokens it signed earlier invalid)."""
        if self._monotonic() - self._fetched_at < REFETCH_SECONDS:
            return False
        self._fetched_at = self._monotonic()
        try:
            self._keys = KeySet.import_key_set(self._fetch_keys())  # type: ignore[arg-type]
        except Exception:  # the issuer down or answering nonsense: no new keys
            logger.warning("the issuer's key set could not be fetched", exc_info=True)
            return False
        return True


def fetch_json(url: str) -> Callable[[], dict[str, Any]]:
    """A fetch of the JSON document at `url` (the issuer's key set)."""

    def fetch() -> dict[str, Any]:
        import httpx2

        response = httpx2.get(url, timeout=5.0, follow_redirects=False)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    return fetch
