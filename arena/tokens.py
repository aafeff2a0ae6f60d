"""Signed, single-use battle tokens.

The signature proves the server issued the token for this battle (and when); single use comes
from the database, because a battle has at most one Vote row. Signing alone cannot stop replay.
"""

from __future__ import annotations

import uuid

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


# --- per-battle media links ---------------------------------------------------------------------

_MEDIA_SALT = "arena.battle-media"


def slot_media_token(*, battle_public_id: str, position: int) -> str:
    """A link token for one slot's output in one battle: unique to the battle and the slot (and
    to the moment it was made), expiring with the battle token, and saying nothing of the model
    or the file (no path, no extension)."""
    value = f"{uuid.UUID(str(battle_public_id)).hex}{position:x}"
    return signing.TimestampSigner(salt=_MEDIA_SALT).sign(value).replace(":", ".")


def slot_media_read(token: str, *, max_age_s: int | None = None) -> tuple[str, int]:
    """``(battle_public_id, position)`` of a link token, or InvalidToken / ExpiredToken."""
    max_age = settings.BATTLE_TOKEN_MAX_AGE_S if max_age_s is None else max_age_s
    if not isinstance(token, str) or not 40 < len(token) < 120:
        raise InvalidToken("No such media link.")
    try:
        value = signing.TimestampSigner(salt=_MEDIA_SALT).unsign(
            token.replace(".", ":"), max_age=max_age
        )
    except signing.SignatureExpired:
        raise ExpiredToken("This media link has expired; load the battle again.") from None
    except signing.BadSignature:
        raise InvalidToken("No such media link.") from None
    return str(uuid.UUID(value[:32])), int(value[32:], 16)
