# One image for every role of the connector (README.md, "Production"):
#   web (the default command)   python -m connector web --host 0.0.0.0 --port 8000
#   workers                     python -m connector worker
#   the listener (media blend)  python -m connector listen --wait-for-section
# compose.yaml runs each as its own service. Build: docker build -t channel-connector .
#
# Two stages: the first builds the virtual environment (runtime requirements only, never
# requirements-dev.txt); the second copies it beside the application, so pip's work files and any
# build tool a package might need stay out of the image. The Python minor version is the one the
# pins are tested with (tests/deploy/test_dockerfile.py checks they match).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-virtualenv --only-binary=:all: -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed, unprivileged uid/gid (10001), so volume and secret file permissions can name it.
RUN groupadd --system --gid 10001 connector \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin connector
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY wsgi.py ./
COPY connector/ connector/
COPY message_templates/ message_templates/
COPY entrypoints/ entrypoints/
# The code is root's and read-only to the service; only var/ (CONNECTOR_DATA_DIR's default) is its own.
RUN python -m compileall -q connector \
    && mkdir -p var \
    && chown 10001:10001 var
USER 10001:10001
EXPOSE 8000
# curl is not in the slim image: the health check is Python's own urllib (a non-2xx raises: exit 1).
# It asks the web role's port; compose.yaml turns it off for workers and the listener, which serve no HTTP.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["python", "-m", "connector", "web", "--host", "0.0.0.0", "--port", "8000"]
