# syntax=docker/dockerfile:1
# Vitrine: the live-shopping session server. `docker compose up` runs it with PostgreSQL and Redis.

# -- build: wheels for Vitrine and every dependency (all have binary wheels: no compiler needed)
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY live ./live
COPY catalog ./catalog
COPY rtc ./rtc
COPY web ./web
COPY seeds ./seeds
RUN pip wheel --wheel-dir /wheels .

# -- run: the installed package only, as an unprivileged user, data in /data
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VITRINE_DATA_DIR=/data \
    VITRINE_PORT=8000
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin vitrine \
    && mkdir -p /data && chown vitrine:vitrine /data
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels pip install --no-index --find-links=/wheels vitrine
USER vitrine
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0)"]
CMD ["vitrine", "serve", "--host", "0.0.0.0"]
