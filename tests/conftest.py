from __future__ import annotations

from collections.abc import Iterator
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
def _empty_cache() -> Iterator[None]:
    """Cached API answers and the per-process caches are keyed by database ids and slugs, which
    repeat across tests and runs. The per-process ones are emptied after each test too: a
    module fixture set up before the next test (its rows committed, where SQLite hands out
    the ids of rows just rolled back again) must not find them."""
    from django.core.cache import cache

    from arena import localcache

    cache.clear()
    localcache.clear()
    yield
    localcache.clear()


@pytest.fixture
def requested_drains(settings: object) -> list[int]:
    """Votes ask for a drain without one running (the tests' settings drain each vote at once):
    the arenas asked for, in order."""
    from tests.factories import REQUESTED_DRAINS

    settings.TALLY_DRAIN_SENDER = "tests.factories.drain_later"  # type: ignore[attr-defined]
    REQUESTED_DRAINS.clear()
    return REQUESTED_DRAINS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, the browser tests share one process (``--dist loadgroup``, set in
    pyproject.toml): one headless Chromium rendering 3D through software WebGL at a time, instead
    of one per process competing for the same cores."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))
