"""Typed settings helpers: good values parse, bad values stop start-up with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_url


def test_it_reads_booleans_in_the_usual_spellings() -> None:
    assert env_bool("X", False, environ={"X": "yes"}) is True
    assert env_bool("X", True, environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True


def test_a_bad_boolean_names_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", True, environ={"DEBUG": "maybe"})


def test_integers_are_range_checked() -> None:
    assert env_int("N", 5, environ={"N": " 7 "}) == 7
    with pytest.raises(ImproperlyConfigured, match="N='seven' is not an integer"):
        env_int("N", 5, environ={"N": "seven"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum 10"):
        env_int("N", 50, minimum=10, environ={"N": "3"})


def test_lists_drop_blank_items() -> None:
    assert env_list("HOSTS", [], environ={"HOSTS": "a.example, ,b.example"}) == [
        "a.example",
        "b.example",
    ]


def test_urls_must_use_an_allowed_scheme() -> None:
    with pytest.raises(
        ImproperlyConfigured, match="DATABASE_URL='mysql://x' must be a URL starting with one of"
    ):
        env_url(
            "DATABASE_URL",
            "",
            schemes=("sqlite", "postgres"),
            environ={"DATABASE_URL": "mysql://x"},
        )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DEBUG": "perhaps"}, "DEBUG='perhaps' is not a boolean"),
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY must be set when DEBUG is off"),
        ({"DATABASE_URL": "mysql://root@localhost/arena"}, "DATABASE_URL="),
        ({"BATTLE_TOKEN_MAX_AGE_S": "5"}, "below the minimum 10"),
        (
            {"GENERATION_HEARTBEAT_S": "60", "GENERATION_STALE_AFTER_S": "90"},
            "at least 3 x GENERATION_HEARTBEAT_S",
        ),
        ({"LEADERBOARD_REBUILD_DEBOUNCE_S": "-1"}, "LEADERBOARD_REBUILD_DEBOUNCE_S"),
        ({"TALLY_DRAIN_DEBOUNCE_S": "soon"}, "TALLY_DRAIN_DEBOUNCE_S"),
        ({"TALLY_SETTLE_MS": "-5"}, "TALLY_SETTLE_MS"),
        ({"ARENA_LOCAL_CACHE_MS": "-1"}, "ARENA_LOCAL_CACHE_MS"),
        ({"ARENA_LOCAL_CACHE_MS": "2s"}, "ARENA_LOCAL_CACHE_MS"),
        ({"WORKER_NICE": "-5"}, "WORKER_NICE"),  # raising a priority is not a worker's call
        ({"WORKER_NICE": "20"}, "WORKER_NICE"),
        ({"MEDIA_ACCEL_REDIRECT": "protected"}, "MEDIA_ACCEL_REDIRECT must be a path"),
        ({"RATE_LIMIT_VOTES": "voter=lots"}, "RATE_LIMIT_VOTES"),
    ],
)
def test_the_settings_module_refuses_bad_configuration(
    variables: dict[str, str], message: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", **variables})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def _settings_of(variables: dict[str, str], expression: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **variables}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print({expression})",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_prepared_statements_are_on_unless_behind_a_transaction_pooler() -> None:
    url = {"DATABASE_URL": "postgres://arena@pgbouncer:6432/arena"}
    expression = (
        "settings.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS'), "
        "settings.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold', 'unset')"
    )

    assert _settings_of({**url, "DB_TRANSACTION_POOLER": "1"}, expression) == "True None"
    assert _settings_of(url, expression) == "False 5"
    # A pooler that tracks prepared statements (PgBouncer 1.21+, max_prepared_statements)
    tracking = {**url, "DB_TRANSACTION_POOLER": "1", "DB_POOLER_PREPARED_STATEMENTS": "1"}
    assert _settings_of(tracking, expression) == "True 5"
