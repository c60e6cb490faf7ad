"""Local JWTs: signed with a key kept under .local/ so `make token` and `make serve` agree.

The local API enforces them as API Gateway's JWT authorizer would: signature, issuer,
audience and expiry; the user is the `sub` claim. The key is an ES256 key pair, as an OIDC
provider's: its public half is published (`public_keys`) for the WebSocket API's authorizer,
which fetches it as it fetches a provider's. `python -m local.tokens alice` prints a token.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from threadline.streams.tokens import TokenVerifier

REPO = Path(__file__).resolve().parent.parent
KEY_FILE = REPO / ".local" / "jwt-es256-key.json"
LOCAL_ISSUER = "https://threadline.local/issuer"
LOCAL_AUDIENCE = "threadline"
ALGORITHM = "ES256"


def signing_key() -> ECKey:
    if not KEY_FILE.exists():
        _make_key()
    return ECKey.import_key(json.loads(KEY_FILE.read_text()))


def _make_key() -> None:
    """Write a new key whole, unless another process wrote one first (the first one wins:
    a link does not replace an existing file)."""
    KEY_FILE.parent.mkdir(exist_ok=True)
    key = ECKey.generate_key("P-256", private=True)
    draft = KEY_FILE.with_name(f"{KEY_FILE.name}.{os.getpid()}")
    draft.write_text(json.dumps(key.as_dict(private=True)))
    draft.chmod(0o600)
    try:
        os.link(draft, KEY_FILE)
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def issue_token(user: str, *, ttl_seconds: int = 3600, audience: str = LOCAL_AUDIENCE) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "iss": LOCAL_ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    key = signing_key()
    return jwt.encode({"alg": ALGORITHM, "kid": key.thumbprint()}, claims, key)


def public_keys() -> dict[str, object]:
    """The key set a provider publishes at its JWKS URL: the public half only."""
    key = signing_key()
    public = {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": ALGORITHM, "use": "sig"}
    return {"keys": [public]}


def verified_claims(
    token: str, issuer: str, audiences: tuple[str, ...]
) -> dict[str, object] | None:
    """The token's claims if API Gateway would accept it, else None: the WebSocket API's
    check, with the local key set."""
    return TokenVerifier(issuer, audiences, public_keys).claims(token)


if __name__ == "__main__":
    print(issue_token(sys.argv[1] if len(sys.argv) > 1 else "alice"))
