"""Management commands refuse bad arguments with a readable message and change nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from arena.models import Asset, LeaderboardSnapshot, Vote
from tests.factories import ready_arena

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("pregenerate", ["--arena", "nope"], "Unknown arena(s): nope"),
        ("pregenerate", ["--models", "ghost"], "Unknown model(s): ghost"),
        ("pregenerate", ["--seeds", "0"], "--seeds and --prompts must be at least 1"),
        ("rebuild_leaderboards", ["--arena", "nope"], "Unknown arena(s): nope"),
        ("simulate_votes", ["--arena", "nope"], "Unknown arena 'nope'"),
        ("simulate_votes", ["--arena", "ARENA", "--votes", "0"], "--votes must be at least 1"),
        ("simulate_votes", ["--arena", "ARENA", "--voters", "0"], "--voters must be at least 1"),
        (
            "simulate_votes",
            ["--arena", "ARENA", "--promoter-votes", "-1"],
            "--promoter-votes cannot be negative",
        ),
        ("scan_fraud", ["--arena", "nope"], "Unknown arena(s): nope"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(
    command: str, args: list[str], message: str
) -> None:
    arena = ready_arena(models=2)
    args = [arena.slug if a == "ARENA" else a for a in args]
    assets_before = Asset.objects.count()

    with pytest.raises(CommandError) as caught:
        call_command(command, *args, verbosity=0)

    assert message in str(caught.value)
    assert Asset.objects.count() == assets_before
    assert not Vote.objects.exists() and not LeaderboardSnapshot.objects.exists()


def test_simulating_votes_in_an_arena_without_outputs_says_so() -> None:
    arena = ready_arena(models=1)

    with pytest.raises(CommandError, match="cannot start a 2-way battle yet"):
        call_command("simulate_votes", "--arena", arena.slug, "--votes", "3", verbosity=0)


def _runtests(*args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py runtests`` as a person runs it: manage.py picks the settings module itself."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k != "DJANGO_SETTINGS_MODULE"
    }
    return subprocess.run(
        [sys.executable, "manage.py", "runtests", *args],
        cwd=settings.BASE_DIR,
        env={**env, "ARENA_NO_BOOTSTRAP": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(False)
def test_runtests_hands_leading_options_to_pytest() -> None:
    done = _runtests("-k", "elo", "--collect-only", "-q", "tests/ranking/test_raters.py")

    assert done.returncode == 0, done.stderr
    assert re.search(r"\b\d+(/\d+)? tests? (collected|selected)", done.stdout), done.stdout


@pytest.mark.django_db(False)
def test_runtests_exits_with_pytests_status() -> None:
    done = _runtests("--collect-only", "-q", "tests/no_such_test_file.py")

    assert done.returncode == 4  # pytest's "usage error": the file does not exist
    assert "pytest exited with status 4" in done.stderr


@pytest.mark.django_db(False)
def test_runtests_runs_pytest_with_the_test_settings() -> None:
    done = _runtests("-q", "-p", "no:cacheprovider", "tests/test_settings_module.py")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
