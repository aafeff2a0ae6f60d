from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _media_root(settings: object, tmp_path: Path) -> Path:
    """Every test writes media into its own folder."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media  # type: ignore[attr-defined]
    return media


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Cached API answers are keyed by database ids, which repeat across tests and runs."""
    from django.core.cache import cache

    cache.clear()
