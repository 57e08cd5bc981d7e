# syntax=docker/dockerfile:1
# One image for every Deskstream service: `deskstream serve SERVICE`, `deskstream migrate`, ...
# Configuration is environment only (DESKSTREAM_*); nothing is baked into the image.

# -- build: install the project and its dependencies into a self-contained virtualenv --------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# .dockerignore is an allow-list: only these reach the build context.
COPY pyproject.toml ./
COPY libs ./libs
COPY services ./services
# A regular (non-editable) install: the migrations ship as package data (services.migrations).
RUN pip install --upgrade pip setuptools wheel && pip install . \
 && deskstream --help >/dev/null

# -- runtime: the virtualenv only, no compilers, no source tree ----------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 deskstream \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin deskstream

COPY --from=build /opt/venv /opt/venv

# The working directory holds `var/` (the default data dir: maildrop when SMTP is unset).
WORKDIR /app
RUN mkdir -p /app/var && chown -R 10001:10001 /app

USER 10001:10001
EXPOSE 8080

ENTRYPOINT ["deskstream"]
CMD ["--help"]
