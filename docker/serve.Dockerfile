# The serving image: onnxruntime, Flask, Pillow, NumPy, the WSGI server, prometheus-client, at the versions of
# requirements/serve.txt (every file checked against its hash), with a CycloneDX SBOM of that environment at
# /opt/sbom.cdx.json. No torch, no package manager, no compiler; compose runs it with a read-only root and /tmp
# on a tmpfs.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml requirements/serve.txt requirements/sbom.txt ./
# A venv without pip or setuptools; the base image's pip installs the lock into it. Then drop what a
# server never loads: test suites, onnxruntime's conversion tooling, and its C-API library
# (libonnxruntime.so, 35 MB: the Python module carries its own copy of the runtime).
WORKDIR /opt/venv/lib/python3.11/site-packages
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --require-hashes -r /build/serve.txt \
 && rm -rf onnxruntime/transformers onnxruntime/quantization onnxruntime/tools onnxruntime/capi/libonnxruntime.so* \
 && find . -depth -type d -name tests -exec rm -rf {} +
# The SBOM of that environment, written by cyclonedx-bom from a venv of its own (locked too), left in this stage.
RUN python -m venv /opt/sbom-tool \
 && /opt/sbom-tool/bin/pip install --require-hashes -r /build/sbom.txt \
 && /opt/sbom-tool/bin/cyclonedx-py environment --pyproject /build/pyproject.toml --output-reproducible \
      --of JSON -o /opt/sbom.cdx.json /opt/venv

FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FASHION_SOFTMAX_HOST=0.0.0.0 \
    FASHION_SOFTMAX_PORT=8000 \
    FASHION_SOFTMAX_MODEL_DIR=/artifacts \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics

# No package manager and no compiler in the running image: the base image's pip and Debian's
# apt and dpkg go (nothing is installed at run time; the venv above has everything).
RUN useradd --no-create-home --uid 10002 server \
 && python -m pip uninstall --quiet --yes pip setuptools wheel \
 && dpkg --purge --force-remove-essential --force-depends apt dpkg >/dev/null \
 && rm -rf /var/lib/dpkg /var/lib/apt /var/cache/apt /etc/apt
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/sbom.cdx.json /opt/sbom.cdx.json
WORKDIR /app
COPY serving/ serving/
USER 10002:10002

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['FASHION_SOFTMAX_PORT']}/ready\", timeout=2)"]
CMD ["python", "-m", "serving"]
