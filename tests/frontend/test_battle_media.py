"""Before the vote a battle tells nothing its slots' models could be read from: no format field,
no extension or file path in its media links, a new link in every battle, and no header that
repeats across battles (ETag, Last-Modified, a file name)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from arena.models import Arena, Asset
from tests.factories import ready_arena

pytestmark = pytest.mark.django_db


def _with_files(arena: Arena, media: Path) -> dict[str, bytes]:
    """Write every asset's file; returns the bytes by file name."""
    written = {}
    for i, asset in enumerate(Asset.objects.filter(model__arenas=arena)):
        path = media / asset.file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"output {i} ".encode() * (50 + i)
        path.write_bytes(data)
        written[asset.file.name] = data
    return written


def _battle(client: Client, arena: Arena) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/arenas/{arena.slug}/battles",
        data=json.dumps({"mode": "pairwise"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    battle: dict[str, Any] = response.json()
    return battle


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_battle_names_no_format_and_its_links_no_file(client: Client, _media_root: Path) -> None:
    arena = ready_arena(models=2, prompts=1)
    _with_files(arena, _media_root)

    battle = _battle(client, arena)

    for slot in battle["slots"]:
        assert set(slot) == {"label", "media_type", "url"}
        assert re.fullmatch(r"/m/[A-Za-z0-9_\-.]+", slot["url"]), slot["url"]
        assert not re.search(r"\.(png|webp|jpe?g|mp4|webm|glb|ply)$", slot["url"])
    assert "assets/" not in json.dumps(battle)


def test_the_same_output_has_another_link_in_every_battle(
    client: Client, _media_root: Path
) -> None:
    arena = ready_arena(models=2, prompts=1)  # every battle shows the same two outputs
    _with_files(arena, _media_root)

    urls = [slot["url"] for _ in range(6) for slot in _battle(client, arena)["slots"]]

    assert len(urls) == len(set(urls)) == 12


def test_a_link_serves_its_output_with_nothing_that_repeats_across_battles(
    client: Client, _media_root: Path
) -> None:
    arena = ready_arena(models=2, prompts=1)
    written = _with_files(arena, _media_root)

    seen: dict[bytes, list[dict[str, str]]] = {}
    for _ in range(2):
        for slot in _battle(client, arena)["slots"]:
            response = client.get(slot["url"])
            assert response.status_code == 200
            body = _body(response)
            seen.setdefault(body, []).append(dict(response.headers))

    assert set(seen) == set(written.values())
    for headers_per_battle in seen.values():
        for headers in headers_per_battle:
            assert headers["Content-Type"] == "image/png"
            assert "ETag" not in headers and "Last-Modified" not in headers
            assert "Content-Disposition" not in headers
            assert headers["Cache-Control"].startswith("private")


def test_a_link_serves_byte_ranges(client: Client, _media_root: Path) -> None:
    arena = ready_arena(models=2, prompts=1)
    written = _with_files(arena, _media_root)
    url = _battle(client, arena)["slots"][0]["url"]

    response = client.get(url, HTTP_RANGE="bytes=2-9")

    assert response.status_code == 206
    assert _body(response) in {data[2:10] for data in written.values()}


def test_a_tampered_or_unknown_link_is_not_found(client: Client, _media_root: Path) -> None:
    arena = ready_arena(models=2, prompts=1)
    _with_files(arena, _media_root)
    url = _battle(client, arena)["slots"][0]["url"]
    token = url.removeprefix("/m/")
    other_slot = token[:32] + ("1" if token[32] == "0" else "0") + token[33:]

    assert client.get(f"/m/{other_slot}").status_code == 404
    assert client.get("/m/" + "a" * 60).status_code == 404
    assert client.get("/m/short").status_code == 404


def test_an_expired_link_is_gone(client: Client, _media_root: Path, settings: Any) -> None:
    arena = ready_arena(models=2, prompts=1)
    _with_files(arena, _media_root)
    url = _battle(client, arena)["slots"][0]["url"]

    later = time.time() + settings.BATTLE_TOKEN_MAX_AGE_S + 5
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = client.get(url)

    assert response.status_code == 410
    assert b"expired" in response.content


def test_battle_links_work_when_a_proxy_serves_the_media_folder(
    client: Client, _media_root: Path, settings: Any
) -> None:
    """SERVE_MEDIA=0 and X-Accel-Redirect leave battle links to Django (only it reads them)."""
    arena = ready_arena(models=2, prompts=1)
    written = _with_files(arena, _media_root)
    settings.MEDIA_ACCEL_REDIRECT = "/protected-media/"
    url = _battle(client, arena)["slots"][0]["url"]

    response = client.get(url)

    assert "X-Accel-Redirect" not in response.headers
    assert _body(response) in set(written.values())
