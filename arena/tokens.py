"""Signed, single-use battle tokens.

The signature proves the server issued the token for this battle (and when); single use comes
from the database, because a battle has at most one Vote row. Signing alone cannot stop replay.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from arena.errors import ExpiredToken, InvalidToken

_SALT = "arena.battle-token.v1"


def battle_token_make(*, battle_public_id: str, nonce: str) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(f"{battle_public_id}.{nonce}")


def battle_token_read(token: str, *, max_age_s: int | None = None) -> tuple[str, str]:
    """Return ``(battle_public_id, nonce)`` or raise InvalidToken / ExpiredToken."""
    max_age = settings.BATTLE_TOKEN_MAX_AGE_S if max_age_s is None else max_age_s
    if not isinstance(token, str) or not token or len(token) > 300:
        raise InvalidToken("The battle token is missing or malformed.")
    try:
        value = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=max_age)
    except signing.SignatureExpired:
        raise ExpiredToken("This battle has expired; load a new one.") from None
    except signing.BadSignature:
        raise InvalidToken(
            "The battle token is invalid (it was altered or not issued here)."
        ) from None
    battle_id, _, nonce = value.partition(".")
    if not battle_id or not nonce:
        raise InvalidToken("The battle token is invalid.")
    return battle_id, nonce
