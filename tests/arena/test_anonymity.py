"""Nothing served before the vote may name the model: not the page, the API, the URL, the file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from arena.models import Arena, AssetStatus, GenerativeModel

pytestmark = pytest.mark.django_db


def _needles() -> list[bytes]:
    needles: set[bytes] = set()
    for name, slug, organisation in GenerativeModel.objects.values_list(
        "name", "slug", "organisation"
    ):
        needles |= {name.lower().encode(), slug.lower().encode(), organisation.lower().encode()}
        needles.add(name.split()[0].lower().encode())  # "Aurora" of "Aurora Image"
    return sorted(n for n in needles if len(n) >= 4)


def _leaks(data: bytes, needles: list[bytes]) -> list[str]:
    lowered = data.lower()
    return [n.decode() for n in needles if n in lowered]


@pytest.fixture
def demo(settings: Any) -> None:
    call_command("seed_demo", "--prompts", "1", verbosity=0)
    call_command("pregenerate", "--jobs", "2", verbosity=0)


def test_no_page_url_filename_or_file_served_before_the_vote_names_a_model(
    client: Client, demo: None
) -> None:
    needles = _needles()
    assert GenerativeModel.objects.filter(assets__status=AssetStatus.READY).distinct().count() == 24

    for arena in Arena.objects.all():
        for mode in ("pairwise", "rank_k"):
            page = client.get(f"/arena/{arena.slug}/?mode={mode}")
            assert page.status_code == 200
            assert _leaks(page.content, needles) == [], f"{arena.slug} page"
            urls = re.findall(r'data-src="([^"]+)"', page.content.decode())
            assert len(urls) == (2 if mode == "pairwise" else 4)
            for url in urls:
                # A per-battle link: no path, no extension (tests/frontend/test_battle_media.py).
                assert re.fullmatch(r"/m/[0-9a-f]{33,}\.[A-Za-z0-9_\-.]+", url), url
                served = client.get(url)
                assert served.status_code == 200
                body = b"".join(served.streaming_content)  # type: ignore[attr-defined]
                assert _leaks(body, needles) == [], url

        battle = client.post(
            f"/api/v1/arenas/{arena.slug}/battles",
            {"mode": "rank_k"},
            content_type="application/json",
        )
        assert battle.status_code == 201
        assert _leaks(battle.content, needles) == [], f"{arena.slug} API battle"


def test_the_reveal_names_the_models(client: Client, demo: None) -> None:
    arena = Arena.objects.get(slug="text-to-image")
    battle = client.post(
        f"/api/v1/arenas/{arena.slug}/battles",
        {"mode": "pairwise"},
        content_type="application/json",
    ).json()

    vote = client.post(
        f"/api/v1/battles/{battle['id']}/vote",
        {"token": battle["token"], "choice": "A"},
        content_type="application/json",
    )

    assert vote.status_code == 201
    assert _leaks(vote.content, _needles())
