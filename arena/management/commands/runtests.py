from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run the whole test suite with pytest (extra arguments go to pytest)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pytest_args", nargs=argparse.REMAINDER)

    def run_from_argv(self, argv: list[str]) -> None:
        """Hand every argument after ``runtests`` to pytest untouched.

        argparse's REMAINDER does not take a first argument that looks like an option, so
        ``runtests -n 4`` or ``runtests -k votes -x`` would be refused as unknown options.
        """
        try:
            self.execute(pytest_args=argv[2:], skip_checks=True, no_color=False, force_color=False)
        except CommandError as exc:
            self.stderr.write(f"{exc.__class__.__name__}: {exc}")
            sys.exit(exc.returncode)

    def handle(self, *args: Any, **options: Any) -> None:
        if not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"):
            self.stderr.write(
                "Note: /usr/bin/chromium is missing, so the browser tests will be skipped "
                "(install it with: apt-get install chromium)."
            )
        # manage.py exported config.settings, which pytest-django would prefer to the ini's
        # tests.settings (each xdist process on its own Redis database).
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        code = subprocess.call(
            [sys.executable, "-m", "pytest", *options["pytest_args"]],
            cwd=settings.BASE_DIR,
            env=env,
        )
        if code:
            raise CommandError(f"pytest exited with status {code}", returncode=code)
