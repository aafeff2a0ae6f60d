"""The overview on the admin index: staff only, a link behind every figure, and a fixed number
of queries whatever the number of arenas, votes, models or prompts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arena.activity import activity_rollup
from arena.leaderboards import leaderboard_rebuild
from arena.models import Arena
from tests.arena.test_dashboard import abandon, flag, traffic
from tests.factories import ready_arena

pytestmark = pytest.mark.django_db

# The admin index for a logged-in superuser: session, user, the recent-actions sidebar, and the
# overview's seven (arena.dashboard).
ADMIN_INDEX_QUERIES = 10


def busy_arena(*, votes: int, models: int = 4, prompts: int = 2, **fields: object) -> Arena:
    """An arena with votes over the last days, an abandoned battle, a flagged voter and a
    leaderboard built before the last vote."""
    now = timezone.now()
    arena = ready_arena(models=models, prompts=prompts, **fields)
    traffic(arena, at=[now - timedelta(hours=5 * i) for i in range(votes)], voters=3)
    leaderboard_rebuild(arena=arena)
    traffic(arena, at=[now], seed=9)
    abandon(arena, at=now)
    flag(arena)
    return arena


def _index(client: Client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_staff_see_every_active_arena_with_its_figures_and_chart_data(
    admin_client: Client,
) -> None:
    arena = busy_arena(votes=3, name="Text to image")
    activity_rollup()

    page, _ = _index(admin_client)

    assert 'id="overview-' + arena.slug + '"' in page
    assert page.count("data-figure=") == 9
    assert 'id="arena-activity" type="application/json"' in page
    assert page.count("data-activity=") == 2
    assert "Generation dashboard" in page and "Vote integrity" in page
    assert "Recent actions" in page  # the admin index itself is still there


def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    ready_arena(models=2)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_every_figure_links_to_a_page_that_opens(admin_client: Client) -> None:
    busy_arena(votes=2)
    activity_rollup()
    page, _ = _index(admin_client)

    links = re.findall(r'class="ov-figure[^"]*" data-figure="(\w+)" href="([^"]+)"', page)

    assert len(links) == 9
    for figure, href in links:
        target = admin_client.get(href.replace("&amp;", "&"))
        assert target.status_code == 200, (figure, href)


def test_the_page_costs_the_same_queries_for_one_arena_or_three_busier_ones(
    admin_client: Client,
) -> None:
    busy_arena(votes=2, models=3, prompts=1)
    activity_rollup()
    admin_client.get("/admin/")  # the session's first request
    _, one = _index(admin_client)

    busy_arena(votes=6, models=6, prompts=4)
    busy_arena(votes=9, models=5, prompts=3)
    activity_rollup()
    _, three = _index(admin_client)

    assert one == three <= ADMIN_INDEX_QUERIES


def test_a_new_arena_without_votes_or_rollup_shows_dashes_not_errors(
    admin_client: Client,
) -> None:
    arena = ready_arena(models=2)

    page, _ = _index(admin_client)

    assert 'id="overview-' + arena.slug + '"' in page
    assert "Activity not rolled up yet" in page
    assert "\N{EN DASH}" in page  # no share of zero votes
