"""The signer behind battle tokens and media links: Django's signatures, derived once."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import signing

from arena.errors import InvalidToken
from arena.tokens import (
    TimestampSigner,
    battle_token_make,
    battle_token_read,
    slot_media_read,
    slot_media_token,
)

BATTLE = "6f1c1a7e-8d2b-4f4e-9a51-2f0c3e9b7d11"


@pytest.mark.parametrize("value", ["abc.def", "", "ünïcode", "x" * 500])
def test_it_signs_exactly_as_djangos_signer_does(value: str) -> None:
    ours, django = TimestampSigner(salt="s"), signing.TimestampSigner(salt="s")

    assert ours.signature(value) == django.signature(value)
    assert django.unsign(ours.sign(value)) == value  # tokens issued before and after it
    assert ours.unsign(django.sign(value)) == value  # stay valid across the change


def test_a_token_signed_with_another_secret_or_salt_is_refused(settings: Any) -> None:
    token = battle_token_make(battle_public_id=BATTLE, nonce="n1")
    assert battle_token_read(token) == (BATTLE, "n1")
    with pytest.raises(signing.BadSignature):
        TimestampSigner(salt="another salt").unsign(token)

    settings.SECRET_KEY = "a-rotated-secret-" + "s" * 40
    with pytest.raises(InvalidToken, match="invalid"):
        battle_token_read(token)


def test_an_old_secret_in_the_fallbacks_still_reads_its_tokens(settings: Any) -> None:
    old = settings.SECRET_KEY
    link = slot_media_token(battle_public_id=BATTLE, position=3)
    settings.SECRET_KEY = "a-rotated-secret-" + "s" * 40
    settings.SECRET_KEY_FALLBACKS = [old]

    assert slot_media_read(link) == (BATTLE, 3)
