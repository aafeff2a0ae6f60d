"""Signed, single-use battle tokens.

The signature proves the server issued the token for this battle (and when); single use comes
from the database, because a battle has at most one Vote row. Signing alone cannot stop replay.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

from arena.errors import ExpiredToken, InvalidToken

_SALT = "arena.battle-token.v1"


class TimestampSigner(signing.TimestampSigner):
    """Django's ``TimestampSigner``, with the same signatures, whose HMAC key is derived once.

    Django hashes the salt and the secret into the HMAC key on every signature; a battle and
    its vote sign and check a dozen tokens (the battle's, one link per slot, twice). Here the
    keyed HMAC is built once per (salt, secret) and copied for each value.
    """

    def signature(self, value: Any, key: Any = None) -> str:
        salt: str = self.salt  # type: ignore[assignment]  # a str here, as Django's own use has it
        mac = _keyed_mac(salt + "signer", key or self.key, self.algorithm).copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


@functools.lru_cache(maxsize=64)
def _keyed_mac(key_salt: str, secret: Any, algorithm: str) -> Any:
    """``django.utils.crypto.salted_hmac``'s HMAC before any message: key = H(salt + secret)."""
    hasher = getattr(hashlib, algorithm)
    return hmac.new(hasher(force_bytes(key_salt) + force_bytes(secret)).digest(), digestmod=hasher)


def _signer(salt: str) -> TimestampSigner:
    """The signer for ``salt`` under the current secret keys, built once for them."""
    return _signer_for(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


@functools.lru_cache(maxsize=16)
def _signer_for(salt: str, key: Any, fallback_keys: tuple[Any, ...]) -> TimestampSigner:
    return TimestampSigner(key=key, fallback_keys=list(fallback_keys), salt=salt)


def battle_token_make(*, battle_public_id: str, nonce: str) -> str:
    return _signer(_SALT).sign(f"{battle_public_id}.{nonce}")


def battle_token_read(token: str, *, max_age_s: int | None = None) -> tuple[str, str]:
    """Return ``(battle_public_id, nonce)`` or raise InvalidToken / ExpiredToken."""
    max_age = settings.BATTLE_TOKEN_MAX_AGE_S if max_age_s is None else max_age_s
    if not isinstance(token, str) or not token or len(token) > 300:
        raise InvalidToken("The battle token is missing or malformed.")
    try:
        value = _signer(_SALT).unsign(token, max_age=max_age)
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
    return _signer(_MEDIA_SALT).sign(value).replace(":", ".")


def slot_media_read(token: str, *, max_age_s: int | None = None) -> tuple[str, int]:
    """``(battle_public_id, position)`` of a link token, or InvalidToken / ExpiredToken."""
    max_age = settings.BATTLE_TOKEN_MAX_AGE_S if max_age_s is None else max_age_s
    if not isinstance(token, str) or not 40 < len(token) < 120:
        raise InvalidToken("No such media link.")
    try:
        value = _signer(_MEDIA_SALT).unsign(token.replace(".", ":"), max_age=max_age)
    except signing.SignatureExpired:
        raise ExpiredToken("This media link has expired; load the battle again.") from None
    except signing.BadSignature:
        raise InvalidToken("No such media link.") from None
    return str(uuid.UUID(value[:32])), int(value[32:], 16)
