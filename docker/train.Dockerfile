# The training image: torch + torchvision at the versions of requirements/train.txt (every file checked against
# its hash), in a venv of their own (exactly the lock: nothing of the base image's); runs `python -m training`
# once and exits.
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
# The fonts the novelty evaluation renders letters from (training/ood.py), from Debian: the job runs offline.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-liberation2 \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first (the lock), so code edits reuse this layer; the base image's pip installs into the venv.
COPY requirements/train.txt /tmp/train.txt
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --require-hashes -r /tmp/train.txt \
 && rm /tmp/train.txt

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
