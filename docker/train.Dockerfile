# The training image: torch + torchvision, runs `python -m training` once and exits.
# CPU-only hosts can build a far smaller image from PyTorch's CPU wheel index:
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu train
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
# The fonts the novelty evaluation renders letters from (training/ood.py), from Debian: the job runs offline.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-liberation2 \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first (from pyproject.toml's `train` group), so code edits reuse this layer.
COPY pyproject.toml docker/requirements.py ./
RUN python requirements.py train > requirements.txt \
 && if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch torchvision; fi \
 && pip install -r requirements.txt \
 && rm requirements.txt requirements.py

COPY training/ training/
# The service's preprocessing: the evaluation's photos go through it as the service's inputs do
COPY serving/ serving/
# /artifacts and /data belong to the unprivileged user; named volumes inherit that ownership.
RUN useradd --create-home --uid 10001 trainer \
 && mkdir -p /artifacts /data \
 && chown trainer:trainer /artifacts /data
USER 10001:10001

ENTRYPOINT ["python", "-m", "training"]
CMD ["--out-dir", "/artifacts", "--data-dir", "/data"]
