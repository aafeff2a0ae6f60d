#!/usr/bin/env bash
# Recompiles the lock files from pyproject.toml (run after changing its dependencies; commit the
# result). Universal: one file serves Linux, macOS and Python 3.11 and 3.12.
#   base.txt  the runtime (python3 manage.py demo, the web and worker processes)
#   dev.txt   runtime + the dev/test tools (python3 manage.py runtests, CI)
#   ops.txt   runtime + Flower and Sentry (the Docker image)
#   gpu.txt   ops.txt + torch (its CUDA build), diffusers, transformers, accelerate, safetensors
#             (the GPU worker image, Dockerfile target "gpu")
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-.venv/bin/uv}"
compile() {
  "$UV" pip compile pyproject.toml --universal --python-version 3.11 --quiet \
    --no-header --annotation-style line "$@"
}
compile -o requirements/base.txt
compile --extra dev -o requirements/dev.txt
compile --extra ops -o requirements/ops.txt
compile --extra ops --extra gpu -o requirements/gpu.txt
