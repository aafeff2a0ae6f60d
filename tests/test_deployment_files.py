"""The image and the compose stack hold what the code needs (checked without a Docker engine)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_image_copies_every_package_the_project_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))

    assert packages <= copied, f"the Dockerfile misses {sorted(packages - copied)}"


def test_nginx_sends_the_media_django_hands_over() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    prefix = re.search(r"MEDIA_ACCEL_REDIRECT: (\S+)", compose)

    assert prefix is not None
    assert re.search(rf"location {re.escape(prefix.group(1))} \{{\s*internal;", nginx)
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf" in compose


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)

    assert users and users[-1] not in ("root", "0"), users
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.M)
    assert "requirements/ops.txt" in dockerfile  # the locked versions, not whatever is newest


def test_web_and_workers_start_after_the_migrations_and_report_their_health() -> None:
    services = _compose()["services"]
    images = ("genai-arena:latest", "genai-arena-gpu:latest")
    app_services = [name for name, s in services.items() if s.get("image") in images]

    for name in app_services:
        if name == "migrate":
            continue
        migrate = services[name]["depends_on"].get("migrate", {})
        assert migrate.get("condition") == "service_completed_successfully", name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for worker in ("worker-tallies", "worker-light", "worker-cpu", "worker-gpu"):
        assert "inspect ping" in " ".join(services[worker]["healthcheck"]["test"]), worker
        assert services[worker]["environment"]["CELERY_NODE"] in " ".join(
            services[worker]["command"]
        )
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name: their text from FROM to the next FROM."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^(?=FROM )", dockerfile, flags=re.M)[1:]
    return {re.match(r"FROM \S+ AS (\S+)", part).group(1): part for part in parts}  # type: ignore[union-attr]


def test_services_keep_prepared_statements_only_through_a_pooler_that_tracks_them() -> None:
    """Behind PgBouncer in transaction mode a prepared statement outlives its server connection
    only where PgBouncer tracks them (1.21+, max_prepared_statements): an app service that
    keeps them on must reach PostgreSQL through such a PgBouncer."""
    services = _compose()["services"]
    pgbouncer = services["pgbouncer"]
    version = re.search(r":v(\d+)\.(\d+)", pgbouncer["image"])
    keeping = [
        name
        for name, service in services.items()
        if (service.get("environment") or {}).get("DB_POOLER_PREPARED_STATEMENTS") == "1"
        and (service.get("environment") or {}).get("DB_TRANSACTION_POOLER") == "1"
    ]

    assert keeping, "the app services keep their prepared statements behind PgBouncer"
    assert all("@pgbouncer:" in services[name]["environment"]["DATABASE_URL"] for name in keeping)
    assert version is not None and (int(version[1]), int(version[2])) >= (1, 21)
    assert int(pgbouncer["environment"]["MAX_PREPARED_STATEMENTS"]) > 0


def test_the_gpu_worker_runs_its_own_cuda_image_and_the_web_image_stays_slim() -> None:
    stages = _stages()
    services = _compose()["services"]

    assert list(stages)[-1] == "web"  # the default target: `docker build .` makes the slim one
    assert "requirements/ops.txt" in stages["web"] and "gpu.txt" not in stages["web"]
    assert "torch==" not in (ROOT / "requirements" / "ops.txt").read_text()
    assert "requirements/gpu.txt" in stages["gpu"]
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+$", (ROOT / "Dockerfile").read_text(), re.M)
    assert services["worker-gpu"]["build"]["target"] == "gpu"
    assert services["worker-gpu"]["image"] == "genai-arena-gpu:latest"
    assert services["web"]["build"] == "."  # the default target
    assert "gen.gpu" in services["worker-gpu"]["command"]
    gpu_lock = (ROOT / "requirements" / "gpu.txt").read_text()
    for package in ("torch", "diffusers", "transformers", "accelerate", "safetensors"):
        assert re.search(rf"^{package}==", gpu_lock, re.M), package


def test_flower_is_off_by_default_behind_auth_and_on_loopback_only() -> None:
    flower = _compose()["services"]["flower"]

    assert flower["profiles"] == ["ops"]
    assert all(str(port).startswith("127.0.0.1:") for port in flower["ports"])
    assert "FLOWER_BASIC_AUTH" in " ".join(flower["command"])


def test_nginx_keeps_the_metrics_inside() -> None:
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()

    assert re.search(r"location = /metrics \{\s*return 404;", nginx)


def test_docker_compose_validates_the_stack() -> None:
    if not shutil.which("docker-compose"):
        if os.environ.get("ARENA_REQUIRE_COMPOSE") == "1":
            pytest.fail("docker-compose is not installed (ARENA_REQUIRE_COMPOSE=1)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env={**os.environ, "SECRET_KEY": "validate-only"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def test_the_lock_files_pin_every_dependency() -> None:
    for kind in ("base", "dev", "ops", "gpu"):
        lines = [
            line.split("#")[0].strip()
            for line in (ROOT / "requirements" / f"{kind}.txt").read_text().splitlines()
        ]
        pins = [line for line in lines if line]
        assert pins, kind
        assert all("==" in pin for pin in pins), [p for p in pins if "==" not in p]
    base = (ROOT / "requirements" / "base.txt").read_text()
    dev = (ROOT / "requirements" / "dev.txt").read_text()
    assert "pytest==" not in base and "ruff==" not in base  # the run command installs no test tools
    assert "pytest==" in dev and "trimesh==" in dev and "trimesh==" not in base


def test_gunicorn_from_the_project_root_preloads_the_app_and_the_image_has_its_config() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "config.wsgi:application"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert re.search(r"^preload_app\s*=\s*True$", done.stdout, re.M), done.stdout + done.stderr
    assert re.search(r"^COPY .*\bgunicorn\.conf\.py\b", (ROOT / "Dockerfile").read_text(), re.M)
