"""The image and the compose stack hold what the code needs (checked without a Docker engine)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
