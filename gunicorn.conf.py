"""gunicorn's settings for the web tier (read from the working directory, so every
``gunicorn config.wsgi:application ...`` started from the project root, the Docker image's
included, uses them; command-line flags still override them).

``preload_app``: the master imports Django once and forks its workers from it. A worker that
dies (a kill -9, a crash, ``max_requests``) is back in milliseconds instead of re-importing
Django, Celery, NumPy and SciPy (about 2 s of CPU, which a busy 2-core machine takes from the
requests it is serving), and the workers share the imported code's memory. Nothing connects
at import: database and Redis connections open in each worker on first use.
"""

preload_app = True
