# One image for web, workers, beat and flower; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ARENA_NO_BOOTSTRAP=1 \
    ARENA_VAR_DIR=/data/var MEDIA_ROOT=/data/media STATIC_ROOT=/app/static
WORKDIR /app
# The locked runtime (+ Flower and Sentry) first: a code change does not reinstall it.
COPY requirements/ops.txt ./requirements/ops.txt
RUN pip install --no-cache-dir -r requirements/ops.txt
COPY pyproject.toml README.md ./
COPY config ./config
COPY arena ./arena
COPY ranking ./ranking
COPY workers ./workers
COPY frontend ./frontend
COPY manage.py ./
# The reviewed model registry files: `python manage.py load_models models/<file>.toml`.
COPY models ./models
RUN pip install --no-cache-dir --no-deps . \
 && DEBUG=0 SECRET_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin arena \
 && mkdir -p /data/media /data/var \
 && chown -R arena:arena /data
# Never root at run time: the app writes only under /data (media, the var directory).
USER arena
EXPOSE 8000
# The web process's liveness; workers override it in docker-compose.yml (celery inspect ping).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
