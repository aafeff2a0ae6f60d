"""The settings a production deployment runs with, checked in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

# What README "Deploying behind TLS" documents.
TLS = {
    "DEBUG": "0",
    "SECRET_KEY": "k3y-" + "x9Qz!7mW" * 8,
    "ALLOWED_HOSTS": "arena.example.org",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_PROXY_SSL_HEADER": "1",
}


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    # (The browser test modules set DJANGO_ALLOW_ASYNC_UNSAFE in this process's environment.)
    skip = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in skip}
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ARENA_NO_BOOTSTRAP": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_tls_settings() -> None:
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **TLS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_warns_without_them() -> None:
    plain = {"DEBUG": "0", "SECRET_KEY": TLS["SECRET_KEY"], "ALLOWED_HOSTS": "arena.example.org"}

    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **plain)

    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr  # HSTS, redirect


def test_sentry_turns_on_with_a_dsn_with_both_integrations_and_no_personal_data() -> None:
    code = (
        "import django; django.setup(); import sentry_sdk; c = sentry_sdk.get_client(); "
        "print(c.is_active(), sorted(k for k in c.integrations if k in ('django', 'celery')), "
        "c.options['send_default_pii'], c.options['environment'])"
    )

    result = _run(
        ["-c", code], SENTRY_DSN="https://public@127.0.0.1:9/1", SENTRY_ENVIRONMENT="staging"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ['celery', 'django'] False staging"


def test_without_a_dsn_sentry_stays_off() -> None:
    code = "import django; django.setup(); import sentry_sdk; print(sentry_sdk.get_client().is_active())"

    result = _run(["-c", code], SENTRY_DSN="")

    assert result.stdout.strip() == "False", result.stderr


def test_a_log_format_that_does_not_exist_is_refused_by_name() -> None:
    result = _run(["-c", "import django; django.setup()"], LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json', got 'xml'" in result.stderr


def test_json_logs_come_out_one_object_per_line() -> None:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('arena.probe').warning('hello %s', 'operators')"
    )

    result = _run(["-c", code], LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert '"message": "hello operators"' in line and '"logger": "arena.probe"' in line


def test_under_gunicorn_one_scrape_sums_every_worker_process(tmp_path) -> None:
    count = (
        "import django; django.setup(); from frontend.metrics import VOTES; "
        "VOTES.labels(arena='demo', mode='pairwise').inc()"
    )
    scrape = (
        "import django; django.setup(); from prometheus_client import generate_latest; "
        "from frontend.metrics import registry; print(generate_latest(registry(state=False)).decode())"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    for _ in range(3):  # three worker processes, one vote each
        assert _run(["-c", count], **env).returncode == 0
    result = _run(["-c", scrape], **env)

    assert 'arena_votes_total{arena="demo",mode="pairwise"} 3.0' in result.stdout, result.stderr
