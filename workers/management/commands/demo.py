from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Run the whole platform locally: migrate, seed the demo arenas, pre-generate outputs, start a "
        "Celery worker and the web server, and print the URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not start a Celery worker."
        )
        parser.add_argument("--skip-pregenerate", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("seed_demo")
        if not options["skip_pregenerate"]:
            call_command("pregenerate")
        self._ensure_admin()
        worker = None
        if not options["no_worker"]:
            log_path = settings.VAR_DIR / "worker.log"
            with log_path.open("ab") as log:
                # -B: the worker also runs beat (cache top-up, reaper), so the demo needs one process;
                # 2 slots, so that counting votes (tallies) never waits behind a generation job.
                worker = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "config", "worker", "-B",
                     "-Q", "tallies,light,gen.cpu", "-c", "2", "--loglevel", "INFO", "-n", "demo@%h",
                     "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")],
                    cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            self.stdout.write(
                f"Celery worker + beat started (pid {worker.pid}; queues tallies, light, gen.cpu; log {log_path})."
            )
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Arena is running at {url}\n  Admin: {url}admin/\n  Stop with Ctrl-C.\n"
            )
        )
        self.stdout.flush()
        # SIGTERM (e.g. from a process manager) unwinds like Ctrl-C, so the worker is stopped too.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            call_command(
                "runserver",
                f"{options['host']}:{options['port']}",
                use_reloader=False,
                use_threading=True,
            )
        finally:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()

    def _ensure_admin(self) -> None:
        user_model = get_user_model()
        if not settings.DEBUG or user_model.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("ARENA_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "admin@localhost", password)
        self.stdout.write(
            self.style.WARNING(f"Created the admin user 'admin' with password: {password}")
        )
