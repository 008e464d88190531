# The training image: torch + torchvision at the versions of requirements/train.txt (every file checked against
# its hash); runs `python -m training` once and exits.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
# Dependencies first (the lock), so code edits reuse this layer.
COPY requirements/train.txt ./
RUN pip install --require-hashes -r train.txt \
 && rm train.txt

COPY training/ training/
# /artifacts and /data belong to the unprivileged user; named volumes inherit that ownership.
RUN useradd --create-home --uid 10001 trainer \
 && mkdir -p /artifacts /data \
 && chown trainer:trainer /artifacts /data
USER 10001:10001

ENTRYPOINT ["python", "-m", "training"]
CMD ["--out-dir", "/artifacts", "--data-dir", "/data"]
