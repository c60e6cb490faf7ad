"""Local JWTs: signed with a key kept under .local/ so `make token` and `make serve` agree.

The local API enforces them as API Gateway's JWT authorizer would: signature, issuer,
audience and expiry; the user is the `sub` claim. `python -m local.tokens alice` prints one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

REPO = Path(__file__).resolve().parent.parent
KEY_FILE = REPO / ".local" / "jwt-signing-key.json"
LOCAL_ISSUER = "https://threadline.local/issuer"
LOCAL_AUDIENCE = "threadline"
ALGORITHM = "HS256"


def signing_key() -> OctKey:
    if KEY_FILE.exists():
        return OctKey.import_key(json.loads(KEY_FILE.read_text()))
    key = OctKey.generate_key(256)
    KEY_FILE.parent.mkdir(exist_ok=True)
    KEY_FILE.write_text(json.dumps(key.as_dict(private=True)))
    KEY_FILE.chmod(0o600)
    return key


def issue_token(user: str, *, ttl_seconds: int = 3600, audience: str = LOCAL_AUDIENCE) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "iss": LOCAL_ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode({"alg": ALGORITHM}, claims, signing_key())


def verified_claims(
    token: str, issuer: str, audiences: tuple[str, ...]
) -> dict[str, object] | None:
    """The token's claims if API Gateway would accept it, else None."""
    try:
        decoded = jwt.decode(token, signing_key(), algorithms=[ALGORITHM])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "values": list(audiences)},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    return dict(decoded.claims)


if __name__ == "__main__":
    print(issue_token(sys.argv[1] if len(sys.argv) > 1 else "alice"))
