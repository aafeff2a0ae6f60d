#!/usr/bin/env python3
"""Django's command-line utility, plus a zero-setup bootstrap.

Run with Python 3.11 or 3.12 on a fresh machine: when Django is not importable, this file creates
``.venv/`` next to it, installs the locked dependencies into it (``requirements/base.txt``, the
runtime only; ``runtests`` or ``ARENA_EXTRAS=dev`` take ``requirements/dev.txt``, which adds the
test tools) and the project itself, and re-runs itself there. When ``pyproject.toml`` or the lock
file changes, the next run re-installs. Set ``ARENA_NO_BOOTSTRAP=1`` to opt out (e.g. in a
container image where the packages are installed system-wide).
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


def _wanted() -> str:
    """``dev`` (runtime + test tools) for the test command or when asked for; else ``base``."""
    if sys.argv[1:2] == ["runtests"] or os.environ.get("ARENA_EXTRAS") == "dev":
        return "dev"
    return "base"


def _digest(kind: str) -> str:
    files = (ROOT / "pyproject.toml", ROOT / "requirements" / f"{kind}.txt")
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _installed(kind: str) -> bool:
    """What the stamp says was installed covers ``kind`` (dev is a superset of base)."""
    if not STAMP.exists():
        return False
    lines = set(STAMP.read_text().split())
    return f"{kind}:{_digest(kind)}" in lines or (
        kind == "base" and f"dev:{_digest('dev')}" in lines
    )


def _install(kind: str) -> None:
    if not VENV_PYTHON.exists():
        print(f"[arena] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(
        f"[arena] installing the locked dependencies (requirements/{kind}.txt) and the project "
        "(first run takes a minute)",
        flush=True,
    )
    pip = [str(VENV_PYTHON), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, "install", "-q", "-r", str(ROOT / "requirements" / f"{kind}.txt")], check=True
    )
    subprocess.run([*pip, "install", "-q", "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(f"{kind}:{_digest(kind)}\n")


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
    kind = _wanted()
    if not _installed(kind):
        _install(kind)
    if not in_our_venv:
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__)), *sys.argv[1:]])


def main() -> None:
    _bootstrap()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
