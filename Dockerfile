# lossd container image.
#
#   docker build -t lossd .
#   docker run --rm -p 8000:8000 lossd
#
# The base is a build argument so the same file builds from the official image (the default, what
# users get) and from any Debian-like image that has python3 with the venv module, such as the
# debootstrap base the CI builds locally (see docs/container.md and .ci/container-test.sh).
# Both stages must use the same base: the virtual environment points at the base's interpreter.
ARG PYTHON_IMAGE=python:3.12-slim

# ---------------------------------------------------------------------------------------------
# Builder: a virtual environment in /opt/venv holding lossd and its runtime dependencies only
# (no dev/conformance extras, no build tools).
FROM ${PYTHON_IMAGE} AS builder

# Spelled out because a base imported from a plain root filesystem carries no environment.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PIP_RETRIES=5 \
    PYTHONDONTWRITEBYTECODE=1

# Optional package-index settings for builds behind a mirror or a TLS-intercepting proxy. They are
# unset unless passed with --build-arg, exist only in this stage and never reach the final image.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT

RUN python3 -m venv /opt/venv

# Dependencies first, in a layer that changes only with pyproject.toml: they are installed along
# with a placeholder package (built in a scratch directory, then uninstalled), so editing app/ or
# README.md does not download them again.
COPY pyproject.toml /tmp/deps/
RUN cd /tmp/deps \
 && mkdir app && touch README.md app/__init__.py \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall --yes lossd \
 && cd / && rm -rf /tmp/deps

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# Then lossd itself, and a smoke test of the installed package (run from / so that it imports the
# installed copy, not /src/app).
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && cd / \
 && /opt/venv/bin/lossd --help > /dev/null \
 && /opt/venv/bin/python -c "import app.main"

# ---------------------------------------------------------------------------------------------
# Runtime: the base plus the virtual environment, run as an unprivileged user.
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="lossd" \
      org.opencontainers.image.description="An HTTP service that evaluates Keras loss functions with Keras's exact numbers." \
      org.opencontainers.image.licenses="Apache-2.0"

RUN (getent group lossd || groupadd --gid 10001 lossd) \
 && (getent passwd lossd || useradd --uid 10001 --gid lossd --no-create-home --no-log-init \
        --home-dir /nonexistent --shell /usr/sbin/nologin lossd)

COPY --from=builder /opt/venv /opt/venv

# Every LOSSD_* setting can be overridden at run time (docker run -e LOSSD_WORKERS=4 ...).
# glibc.malloc.hugetlb=1: large bodies on transparent huge pages (docs/memory.md); set here, so
# `lossd serve` need not restart itself to set it.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOSSD_HOST=0.0.0.0 \
    LOSSD_PORT=8000

# Numeric so that orchestrators (Kubernetes runAsNonRoot) can verify it is not root.
USER 10001:10001
WORKDIR /tmp

EXPOSE 8000

# No curl in the image: the venv's Python asks /healthz itself (on LOSSD_PORT if it was changed).
# HEALTHCHECK is kept by Docker and by buildah/podman with --format docker (OCI images drop it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LOSSD_PORT', '8000'), timeout=4).close()"]

# uvicorn reads LOSSD_HOST, LOSSD_PORT, LOSSD_WORKERS and LOSSD_LOG_LEVEL through `lossd serve`.
CMD ["lossd", "serve"]
