"""Domain errors raised by services. Each carries the HTTP status the API and pages answer with."""

from __future__ import annotations

from typing import Any


class ArenaError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "detail": self.detail}


class InvalidVote(ArenaError):
    status = 400
    code = "invalid_vote"


class InvalidToken(ArenaError):
    status = 400
    code = "invalid_token"


class ExpiredToken(ArenaError):
    status = 410
    code = "expired_token"


class NotYourBattle(ArenaError):
    status = 403
    code = "not_your_battle"


class AlreadyVoted(ArenaError):
    status = 409
    code = "already_voted"


class NotFound(ArenaError):
    status = 404
    code = "not_found"


class NotEnoughAssets(ArenaError):
    """The arena cannot serve a battle yet: too few ready outputs share a prompt."""

    status = 503
    code = "not_enough_assets"


class InvalidImport(ArenaError):
    code = "invalid_import"


class InvalidPrompt(ArenaError):
    """A voter's own prompt was refused (moderation, length, bad image)."""

    code = "invalid_prompt"


class StillGenerating(ArenaError):
    status = 409
    code = "still_generating"


class InvalidBattle(ArenaError):
    """A battle request that cannot be served as asked (e.g. a bad list of named models)."""

    code = "invalid_battle"


class RateLimited(ArenaError):
    """Too many requests in a window; ``detail`` has scope, limit, window_s, retry_after_s."""

    status = 429
    code = "rate_limited"

    @property
    def retry_after_s(self) -> int:
        return int(self.detail["retry_after_s"])
