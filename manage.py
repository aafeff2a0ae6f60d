#!/usr/bin/env python3
"""Django's command-line utility, plus a zero-setup bootstrap.

Run with any Python 3.11 on a fresh machine: when Django is not importable, this file creates
``.venv/`` next to it, installs the project with its dev/test extras into it and re-runs itself
there. When ``pyproject.toml`` changes, the next run re-installs. Set ``ARENA_NO_BOOTSTRAP=1``
to opt out (e.g. in a container image where the packages are installed system-wide).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".arena-installed"


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def _install() -> None:
    if not VENV_PYTHON.exists():
        print(f"[arena] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(
        "[arena] installing the project and its dependencies (first run takes a minute)", flush=True
    )
    pip = [str(VENV_PYTHON), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(_requirements_digest())


def _bootstrap() -> None:
    if os.environ.get("ARENA_NO_BOOTSTRAP") == "1":
        return
    in_our_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_our_venv:
        try:
            import django  # noqa: F401
        except ImportError:
            pass
        else:
            return  # an environment that already has the packages (container, CI venv)
    stale = not STAMP.exists() or STAMP.read_text() != _requirements_digest()
    if stale:
        _install()
    if not in_our_venv:
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__)), *sys.argv[1:]])


def main() -> None:
    _bootstrap()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
