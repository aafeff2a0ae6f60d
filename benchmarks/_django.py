"""Django set-up shared by the benchmark scripts that drive the web app.

A script puts the repository root on ``sys.path`` (it runs as
``python benchmarks/<script>.py``), then calls :func:`django_setup` before it
imports any model, and :func:`migrate` once its arguments are parsed::

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._django import django_setup, migrate

    django_setup()

Without DATABASE_URL everything (the SQLite file, media, the filesystem broker)
goes to a throw-away folder (``ARENA_VAR_DIR``), so a benchmark never touches
the development database; with it, the benchmark uses that database.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import django
from django.core.management import call_command

#: The repository root.
ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    """Configure Django from ``config.settings``, on a throw-away folder unless DATABASE_URL is set.

    Idempotent: a benchmark that imports another one's helpers sets up once.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if "DATABASE_URL" not in os.environ and "ARENA_VAR_DIR" not in os.environ:
        os.environ["ARENA_VAR_DIR"] = tempfile.mkdtemp(prefix="arena-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def migrate() -> None:
    """Create or update the tables of the configured database."""
    call_command("migrate", verbosity=0)
