# Two images from one file. The default (last) target, "web", is the slim image for web, the
# CPU workers, beat and Flower (no torch); docker-compose.yml picks the command. The "gpu" target
# is the GPU worker's: the same code on a CUDA base with torch, diffusers, transformers,
# accelerate and safetensors (requirements/gpu.txt), for the `diffusers` backend.
#   docker build -t genai-arena .                  (web)
#   docker build --target gpu -t genai-arena-gpu .  (GPU worker; `docker compose --profile gpu`)

# The GPU target's base image (a FROM line can only use an argument declared before the first).
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04

# -- the application's source, shared by both images ---------------------------------------------
FROM scratch AS source
WORKDIR /app
COPY pyproject.toml README.md manage.py gunicorn.conf.py ./
COPY config ./config
COPY arena ./arena
COPY ranking ./ranking
COPY workers ./workers
COPY frontend ./frontend
# The reviewed model registry files: `python manage.py load_models models/<file>.toml`.
COPY models ./models

# -- the GPU worker ------------------------------------------------------------------------------
# torch's wheels bring their own CUDA runtime, cuDNN and NCCL (the nvidia-* packages of the
# lock), so the CUDA "base" flavour is enough: it only adds what the NVIDIA container runtime needs
# to hand the host's driver in. torch 2.13 is built for CUDA 13: the host needs driver 580 or
# newer. Override CUDA_IMAGE (declared at the top) to build on another release.
FROM ${CUDA_IMAGE} AS gpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ARENA_NO_BOOTSTRAP=1 \
    ARENA_VAR_DIR=/data/var MEDIA_ROOT=/data/media \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PATH=/opt/venv/bin:$PATH
# Ubuntu 24.04's Python 3.12 (the locks serve 3.11 and 3.12) in a virtual environment of its own.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
WORKDIR /app
COPY requirements/gpu.txt ./requirements/gpu.txt
RUN pip install --no-cache-dir -r requirements/gpu.txt
COPY --from=source /app ./
RUN pip install --no-cache-dir --no-deps . \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin arena \
 && mkdir -p /data/media /data/var /models \
 && chown -R arena:arena /data
# Weights are read from /models (mount them read-only; the backend never downloads). The
# worker's health check is `celery inspect ping`, set in docker-compose.yml.
USER arena
CMD ["celery", "-A", "config", "worker", "-Q", "gen.gpu", "-c", "1", "--prefetch-multiplier", "1", "--loglevel", "INFO"]

# -- web, CPU workers, beat, Flower (the default target) -----------------------------------------
FROM python:3.11-slim AS web
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ARENA_NO_BOOTSTRAP=1 \
    ARENA_VAR_DIR=/data/var MEDIA_ROOT=/data/media STATIC_ROOT=/app/static
WORKDIR /app
# The locked runtime (+ Flower and Sentry) first: a code change does not reinstall it.
COPY requirements/ops.txt ./requirements/ops.txt
RUN pip install --no-cache-dir -r requirements/ops.txt
COPY --from=source /app ./
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
