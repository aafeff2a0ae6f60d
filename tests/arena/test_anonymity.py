"""Nothing served before the vote may name the model: not the page, the API, the URL, the file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from arena.models import Arena, AssetStatus, GenerativeModel
from workers.media import sniff_format

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
    assert GenerativeModel.objects.filter(assets__status=AssetStatus.READY).distinct().count() == 32

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


_EXTENSION = re.compile(r"\.(png|webp|jpe?g|gif|mp4|webm|mov|glb|gltf|ply|splat)\b", re.I)


def _served(client: Client, url: str) -> tuple[str, bytes]:
    answer = client.get(url)
    assert answer.status_code == 200, url
    return answer["Content-Type"], b"".join(answer.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("slug", "made"),
    [
        ("text-to-image", {"png", "webp"}),
        ("text-to-video", {"webm", "mp4"}),
        ("image-to-3d", {"glb"}),
        ("image-to-splat", {"ply"}),
    ],
)
def test_a_normalised_battle_shows_one_format_and_size_and_the_reveal_links_the_original(
    client: Client, demo: None, slug: str, made: set[str]
) -> None:
    urls: list[str] = []
    served: set[tuple[str, int]] = set()
    originals: dict[str, str] = {}
    for _ in range(3):
        battle = client.post(
            f"/api/v1/arenas/{slug}/battles", {"mode": "rank_k"}, content_type="application/json"
        ).json()
        assert not {"format", "fmt", "extension"} & {k for s in battle["slots"] for k in s}
        for slot in battle["slots"]:
            assert not _EXTENSION.search(slot["url"]), "no extension in the link"
            content_type, body = _served(client, slot["url"])
            served.add((content_type, len(body)))
            urls.append(slot["url"])
        vote = client.post(
            f"/api/v1/battles/{battle['id']}/vote",
            {"token": battle["token"], "ranking": [["A"], ["B"], ["C"], ["D"]]},
            content_type="application/json",
        ).json()
        for shown in vote["reveal"]:
            originals[shown["model"]] = shown["original_url"]
            model = GenerativeModel.objects.get(name=shown["model"])
            assert shown["original_format"] == model.primary_format

    assert {sniff_format(_served(client, url)[1]) for url in originals.values()} == made
    assert len(urls) == len(set(urls)) == 12, "no link served twice"
    assert len(served) == 1, f"one Content-Type and one size in {slug}: {served}"
    for name, url in originals.items():
        _, original = _served(client, url)
        model = GenerativeModel.objects.get(name=name)
        assert sniff_format(original) == model.primary_format, name
