# syntax=docker/dockerfile:1.7
# tradewatch worker image: wheels are built in a throw-away stage, the runtime holds only the
# installed package. Mount the config at /etc/tradewatch/tradewatch.yaml and the rules at
# /etc/tradewatch/rules; state (the embedded Redis, when no redis_url is set) lives on the
# /var/lib/tradewatch volume. See docs/operations.md.

# Pinned by version: a rebuild months later gets the same Python and Debian release.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: wheels for tradewatch and every dependency ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# A compiler only for dependencies without a wheel for this platform; it never reaches the runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY rules ./rules
RUN python -m pip wheel --wheel-dir /wheels .

# --- runtime: the package, a non-root user, nothing else -----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    TRADEWATCH_STATE_DIR=/var/lib/tradewatch \
    TRADEWATCH_LOG_FORMAT=json \
    TRADEWATCH_SERVER__HOST=0.0.0.0 \
    TRADEWATCH_SERVER__PORT=8080
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels tradewatch \
 && groupadd --system --gid ${UID} tradewatch \
 && useradd --system --uid ${UID} --gid tradewatch --home-dir /var/lib/tradewatch --no-create-home \
      --shell /usr/sbin/nologin tradewatch \
 && mkdir -p /etc/tradewatch/rules /var/lib/tradewatch \
 && chown tradewatch:tradewatch /var/lib/tradewatch
# ./tradewatch.yaml is looked up in the working directory, so a config mounted here is found;
# without one the built-in default runs (public sources, packaged rules, console alerts).
WORKDIR /etc/tradewatch
VOLUME ["/var/lib/tradewatch"]
USER tradewatch:tradewatch
EXPOSE 8080
# /healthz answers while the process runs; readiness (/readyz) is for orchestrators that route traffic.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TRADEWATCH_SERVER__PORT', '8080'), timeout=4)"]
# The worker handles SIGTERM itself: it stops polling, finishes in-flight work and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tradewatch"]
CMD ["run"]
