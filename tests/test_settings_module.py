"""The suite runs on tests.settings: under xdist each process has a Redis database of its own."""

from __future__ import annotations

import os

from django.conf import settings

from tests.settings import _redis_url_for_worker


def test_the_suite_runs_on_the_test_settings() -> None:
    # (settings.SETTINGS_MODULE reads None under the autouse settings overrides.)
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "tests.settings"


def test_each_xdist_process_gets_its_own_redis_database() -> None:
    urls = {_redis_url_for_worker("redis://127.0.0.1:6379/0", f"gw{n}") for n in range(4)}

    assert urls == {f"redis://127.0.0.1:6379/{db}" for db in (1, 2, 3, 4)}


def test_this_process_uses_its_database_when_under_xdist() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and settings.CACHES["default"].get("LOCATION", "").startswith("redis"):
        expected = _redis_url_for_worker(settings.CACHES["default"]["LOCATION"], worker)
        assert settings.CACHES["default"]["LOCATION"] == expected
