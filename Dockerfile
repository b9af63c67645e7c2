# syntax=docker/dockerfile:1
# Loopgate: one image for the web process, the workers and beat; the command chooses
# (compose.yaml, deploy/k8s/). Multi-stage: the dependencies are installed into a
# virtual environment in the build stage and only that environment and the code,
# with the static files collected, go into the final stage (no pip cache, no compiler).
#
#   docker build -t loopgate:local .
#   docker run loopgate:local                                   # web (daphne on :8000)
#   docker run loopgate:local celery -A orchestrator worker -P threads -c 8 -l INFO
#   docker run loopgate:local celery -A orchestrator beat -s /tmp/celerybeat-schedule -l INFO

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the pinned dependencies and the collected static files ---------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3.11 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /app
COPY . /app
# Settings need these to load; nothing connects to them while collecting static files.
# DEBUG=0 selects WhiteNoise's compressed storage, so the image serves pre-compressed files.
RUN DEBUG=0 SECRET_KEY=collectstatic-only ALLOWED_HOSTS=build LOOPGATE_EMBEDDED=1 \
    DATABASE_URL=postgres://build@localhost/build \
    /opt/venv/bin/python manage.py collectstatic --noinput --verbosity 0 \
 && find /app -name __pycache__ -prune -exec rm -rf {} +

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=orchestrator.settings \
    DEBUG=0 \
    LOG_FORMAT=json \
    LOOPGATE_WORKER_HEARTBEAT_FILE=/tmp/loopgate-worker-heartbeat
RUN groupadd --gid 10001 loopgate \
 && useradd --uid 10001 --gid loopgate --home-dir /app --no-create-home --shell /usr/sbin/nologin loopgate
COPY --from=build /opt/venv /opt/venv
# Owned by root, read-only to the app user: the process cannot rewrite its own code.
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9100
# Celery and daphne both finish their work on SIGTERM (a worker hands its executions back).
STOPSIGNAL SIGTERM
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "orchestrator.asgi:application"]
