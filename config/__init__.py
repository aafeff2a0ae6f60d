"""The project package: settings, URLs, WSGI/ASGI and the Celery app.

It is the only package that knows every other one (``ranking`` <- ``arena`` <- ``workers`` <-
``frontend`` <- ``config``); nothing below it imports it.
"""

import os

# The rating fits are small (50x50) matrices: OpenBLAS threads only fight the web and worker
# processes for the cores (measured 10-100x slower L-BFGS on a busy 2-core machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from config.celery import app as celery_app

__all__ = ["celery_app"]
