"""/media/ serving: whole files, byte ranges for video seeking, and no escaping MEDIA_ROOT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.test import Client


def _file(media: Path) -> bytes:
    (media / "assets").mkdir()
    data = bytes(range(256)) * 40
    (media / "assets" / "clip.webm").write_bytes(data)
    return data


def _body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_it_serves_a_whole_file_with_its_type(client: Client, _media_root: Path) -> None:
    data = _file(_media_root)

    response = client.get("/media/assets/clip.webm")

    assert response.status_code == 200
    assert response["Content-Type"] == "video/webm"
    assert response["Accept-Ranges"] == "bytes"
    assert _body(response) == data


def test_it_serves_a_byte_range(client: Client, _media_root: Path) -> None:
    data = _file(_media_root)

    response = client.get("/media/assets/clip.webm", HTTP_RANGE="bytes=100-199")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert _body(response) == data[100:200]


def test_it_serves_an_open_ended_and_a_suffix_range(client: Client, _media_root: Path) -> None:
    data = _file(_media_root)

    assert (
        _body(client.get("/media/assets/clip.webm", HTTP_RANGE=f"bytes={len(data) - 10}-"))
        == data[-10:]
    )
    assert _body(client.get("/media/assets/clip.webm", HTTP_RANGE="bytes=-5")) == data[-5:]


def test_an_unsatisfiable_range_is_416(client: Client, _media_root: Path) -> None:
    data = _file(_media_root)

    response = client.get("/media/assets/clip.webm", HTTP_RANGE=f"bytes={len(data) + 5}-")

    assert response.status_code == 416


def test_it_never_serves_outside_media_root(client: Client, _media_root: Path) -> None:
    _file(_media_root)

    assert client.get("/media/../pyproject.toml").status_code == 404
    assert client.get("/media/assets/%2e%2e/%2e%2e/etc/passwd").status_code == 404
    assert client.get("/media/assets/missing.png").status_code == 404


def test_behind_nginx_it_hands_the_file_over_with_x_accel_redirect(
    client: Client, _media_root: Path, settings: Any
) -> None:
    _file(_media_root)
    (_media_root / "assets" / "a b.png").write_bytes(b"png")
    settings.MEDIA_ACCEL_REDIRECT = "/protected-media/"

    response = client.get("/media/assets/clip.webm", HTTP_RANGE="bytes=100-199")
    spaced = client.get("/media/assets/a%20b.png")

    assert response.status_code == 200  # nginx answers the range from the file itself
    assert response["X-Accel-Redirect"] == "/protected-media/assets/clip.webm"
    assert response["Content-Type"] == "video/webm"
    assert response.content == b""
    assert spaced["X-Accel-Redirect"] == "/protected-media/assets/a%20b.png"
    assert client.get("/media/assets/missing.png").status_code == 404
    assert client.get("/media/../pyproject.toml").status_code == 404
