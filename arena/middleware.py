"""Anonymous voter identity: a signed cookie holding the Voter's public id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from arena.models import Arena, Voter
from arena.services import voter_discard_unused, voter_get_or_create

_COOKIE_SALT = "arena.voter.v1"


def request_voter(
    request: HttpRequest, *, seen_in: Arena | None = None, voting_on: str | None = None
) -> Voter:
    """The voter of this request; created (and its cookie set on the response) on first use.
    ``seen_in`` (the arena the request serves a battle in) and ``voting_on`` (the battle it
    votes on): what the request reads next, read together with the voter when it is read here
    (``services.voter_get_or_create``)."""
    cached = getattr(request, "_arena_voter", None)
    if cached is not None:
        return cached
    public_id = voter_cookie(request)
    voter, created = voter_get_or_create(
        public_id=public_id,
        user=_signed_in_user(request),
        seen_in=seen_in,
        voting_on=voting_on,
    )
    request._arena_voter = voter  # type: ignore[attr-defined]
    request._arena_voter_created = created  # type: ignore[attr-defined]
    request._arena_voter_new = created or public_id != str(voter.public_id)  # type: ignore[attr-defined]
    return voter


def _signed_in_user(request: HttpRequest) -> Any:
    """The request's user where it can be signed in. Django's session authentication reads it
    lazily (a session lookup) from the session cookie: without one it is anonymous, so None
    here, unread. A request that set its user itself (``login``) keeps it."""
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None
    return user


def voter_cookie(request: HttpRequest) -> str | None:
    """The voter's public id as its signed cookie holds it (None: no cookie, or not one this
    server signed); the signature is checked once per request, whoever asks."""
    try:
        value: str | None = request._arena_voter_cookie  # type: ignore[attr-defined]
    except AttributeError:
        value = request.get_signed_cookie(
            settings.VOTER_COOKIE_NAME, default=None, salt=_COOKIE_SALT
        )
        request._arena_voter_cookie = value  # type: ignore[attr-defined]
    return value


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind a proxy (ARENA_TRUST_X_FORWARDED_FOR) it is the last entry
    of X-Forwarded-For, the one the proxy appended: earlier entries are whatever the client
    sent, and trusting them would let a script pick its own network for rate limits."""
    if settings.ARENA_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


class VoterMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "_arena_voter_created", False) and response.status_code >= 400:
            # A failed request stores nothing, not even the voter it introduced.
            voter_discard_unused(voter=request._arena_voter)  # type: ignore[attr-defined]
            return response
        if getattr(request, "_arena_voter_new", False):
            voter: Voter = request._arena_voter  # type: ignore[attr-defined]
            response.set_signed_cookie(
                settings.VOTER_COOKIE_NAME,
                str(voter.public_id),
                salt=_COOKIE_SALT,
                max_age=settings.VOTER_COOKIE_MAX_AGE_S,
                httponly=True,
                samesite="Lax",
                secure=not settings.DEBUG,
            )
        return response


__all__ = ["VoterMiddleware", "client_ip", "request_voter", "voter_cookie"]
