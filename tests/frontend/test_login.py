"""Optional login: the pages, the header link, and the voter tied to the account."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from arena.models import Voter
from tests.factories import ready_arena

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice() -> User:
    return User.objects.create_user(username="alice", password=PASSWORD)


def _log_in(client: Client, password: str = PASSWORD) -> Any:
    return client.post("/accounts/login/", {"username": "alice", "password": password})


def test_the_login_page_is_styled_like_the_site(client: Client) -> None:
    response = client.get("/accounts/login/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="site-header"' in html and "arena/site.css" in html
    assert 'name="username"' in html and 'type="password"' in html
    assert "csrfmiddlewaretoken" in html


def test_the_header_offers_a_log_in_link_to_visitors(client: Client) -> None:
    html = client.get("/").content.decode()

    assert 'href="/accounts/login/?next=/"' in html
    assert "Log out" not in html


def test_the_header_offers_log_out_with_the_username_once_logged_in(
    client: Client, alice: User
) -> None:
    client.force_login(alice)

    html = client.get("/").content.decode()

    assert "Log out (alice)" in html
    assert 'action="/accounts/logout/"' in html and 'method="post"' in html


def test_logging_in_redirects_to_the_next_page(client: Client, alice: User) -> None:
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/arena/x/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/arena/x/"


def test_logging_in_without_next_goes_home(client: Client, alice: User) -> None:
    response = _log_in(client)

    assert response["Location"] == "/"


def test_a_wrong_password_shows_the_form_again_with_an_error(client: Client, alice: User) -> None:
    response = _log_in(client, password="wrong")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html and "correct username and password" in html
    assert "_auth_user_id" not in client.session


def test_logging_in_ties_the_browsers_voter_to_the_account(client: Client, alice: User) -> None:
    arena = ready_arena(models=2)
    client.get(f"/arena/{arena.slug}/")  # the first visit sets the voter cookie
    voter = Voter.objects.get()
    assert voter.user is None

    _log_in(client)

    voter.refresh_from_db()
    assert voter.user == alice


def test_a_logged_in_users_next_request_ties_a_cookie_voter_without_one(
    client: Client, alice: User
) -> None:
    arena = ready_arena(models=2)
    client.get(f"/arena/{arena.slug}/")
    voter = Voter.objects.get()
    client.force_login(alice)  # a session that skipped the login view
    assert Voter.objects.get().user is None

    client.get(f"/arena/{arena.slug}/")

    voter.refresh_from_db()
    assert voter.user == alice
    assert Voter.objects.count() == 1


def test_a_login_without_a_voter_cookie_creates_no_voter(client: Client, alice: User) -> None:
    _log_in(client)

    assert not Voter.objects.exists()


def test_logging_out_ends_the_session_and_drops_the_voter_cookie(
    client: Client, alice: User
) -> None:
    arena = ready_arena(models=2)
    client.get(f"/arena/{arena.slug}/")
    _log_in(client)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302 and response["Location"] == "/"
    assert "_auth_user_id" not in client.session
    assert response.cookies[settings.VOTER_COOKIE_NAME].value == ""
    client.get(f"/arena/{arena.slug}/")
    newest = Voter.objects.order_by("pk").last()
    assert newest is not None and newest.user is None  # the next person is a new voter
    assert Voter.objects.get(user=alice)  # the account keeps its own voter


def test_an_anonymous_api_request_never_reads_its_user() -> None:
    """Without a session cookie nobody is signed in: the voter is found without the session
    lookup that reading ``request.user`` costs (about 2% of a battle's CPU)."""
    from django.test import RequestFactory
    from django.utils.functional import SimpleLazyObject

    from arena.middleware import request_voter

    def unread() -> None:
        raise AssertionError("request.user was read")

    request = RequestFactory().post("/api/v1/arenas/x/battles")
    request.user = SimpleLazyObject(unread)  # type: ignore[assignment]

    voter = request_voter(request)

    assert voter.user is None and Voter.objects.filter(pk=voter.pk).exists()


def test_a_request_with_a_session_cookie_reads_its_user(client: Client, alice: User) -> None:
    from django.test import RequestFactory
    from django.utils.functional import SimpleLazyObject

    from arena.middleware import request_voter

    request = RequestFactory().post("/api/v1/arenas/x/battles")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = "a-session"
    request.user = SimpleLazyObject(lambda: alice)  # type: ignore[assignment]

    assert request_voter(request).user == alice
