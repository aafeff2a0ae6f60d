# One image for web, workers, beat and flower; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ARENA_NO_BOOTSTRAP=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY arena ./arena
COPY ranking ./ranking
COPY workers ./workers
COPY frontend ./frontend
COPY manage.py ./
RUN pip install --no-cache-dir ".[ops]"
RUN DEBUG=0 SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
