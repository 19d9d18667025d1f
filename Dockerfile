# syntax=docker/dockerfile:1
# Pinhole, rung 0 in one container: `docker build -t pinhole .` then
#   docker run -p 8000:8000 -v pinhole-data:/app/storage pinhole
# Both stages use the same base image so the venv's interpreter paths stay valid when copied.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY requirements.lock /tmp/requirements.lock
# No compiler is needed: libvips comes inside the pyvips-binary wheel, and pyvips (published only as an sdist)
# builds as pure Python when it finds no libvips headers, using pyvips-binary's compiled module.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PINHOLE_SERVER__HOST=0.0.0.0
RUN groupadd --system --gid 10001 pinhole \
 && useradd --system --uid 10001 --gid pinhole --home-dir /app --no-create-home --shell /usr/sbin/nologin pinhole
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The code stays root-owned and read-only to the app; only the data directory is writable.
COPY main.py config.toml ./
COPY app/ app/
COPY templates/ templates/
COPY static/ static/
RUN mkdir -p /app/storage && chown pinhole:pinhole /app/storage && chmod 0700 /app/storage
USER pinhole
VOLUME /app/storage
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"
# serve applies pending migrations itself when configured to.
CMD ["python", "main.py", "serve"]
