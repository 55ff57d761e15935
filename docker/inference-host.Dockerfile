# An OpenVINO inference host, as the deployment sees it. Two targets:
#
#   host         the ovcache agent and OpenVINO in /opt/ovcache, sshd with key-only
#                login for the user `ovcache`, who owns the cache directory
#                /var/cache/openvino (a volume). Airflow reaches it over SSH.
#   host-worker  the same, plus Airflow: a Celery worker that runs on the host and
#                listens to that host's own queue, so its tasks use the local
#                transport (no SSH, no inbound port).
#
# Build context: the repository root (docker compose does this for you):
#   docker build -f docker/inference-host.Dockerfile --target host -t airflow-ovcache/inference-host:local .
#
# OPENVINO_VERSION must be the runtime your serving application uses on the host:
# a blob compiled by one OpenVINO version is rewritten by another (docs/concepts.md).

ARG PYTHON_VERSION=3.11
ARG PYTHON_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

# --- the agent as a wheel, built from this checkout --------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY airflow_ovcache/ airflow_ovcache/
COPY docker/build/requirements.py /usr/local/bin/ovcache-requirements
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && python /usr/local/bin/ovcache-requirements pyproject.toml --extra encryption --no-base \
        > /dist/requirements-agent-extras.txt \
    && python /usr/local/bin/ovcache-requirements pyproject.toml --extra airflow --no-base \
        > /dist/requirements-airflow.txt

# --- the inference host: agent, OpenVINO, sshd ---------------------------------------------
FROM ${PYTHON_IMAGE} AS host
ARG OPENVINO_VERSION=2026.4.1
ARG OVCACHE_UID=10001
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OVCACHE_CACHE_DIR=/var/cache/openvino \
    OVCACHE_REPOSITORY=/models

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# openssh-server's package scripts generate host keys; they are deleted here so no two
# containers of this image ever share a host key (the entrypoint makes one per host,
# in a volume). The account gets "*" (no password) rather than useradd's "!" (locked):
# without PAM, sshd refuses even key logins to a locked account.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-server tini \
    && rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_* \
    && groupadd --gid "${OVCACHE_UID}" ovcache \
    && useradd --uid "${OVCACHE_UID}" --gid ovcache --home-dir /var/lib/ovcache --create-home --shell /bin/bash ovcache \
    && usermod --password '*' ovcache \
    && install -d -o ovcache -g ovcache -m 2770 /var/cache/openvino \
    && install -d -o ovcache -g ovcache -m 0755 /models \
    && install -d -m 0755 /etc/ssh/host-keys /run/sshd

RUN --mount=type=bind,from=wheel,source=/dist,target=/tmp/ovcache-dist \
    python -m venv /opt/ovcache \
    && /opt/ovcache/bin/pip install --no-cache-dir \
        "openvino==${OPENVINO_VERSION}" \
        /tmp/ovcache-dist/airflow_ovcache-*.whl \
        -r /tmp/ovcache-dist/requirements-agent-extras.txt \
    && ln -s /opt/ovcache/bin/ovcache /usr/local/bin/ovcache \
    && ovcache --version

COPY --chmod=0644 docker/inference-host/sshd_config /etc/ssh/sshd_config
COPY --chmod=0755 docker/inference-host/entrypoint.sh /usr/local/bin/ovcache-host-entrypoint
COPY --chmod=0755 docker/inference-host/authorized-keys.sh /usr/local/bin/ovcache-authorized-keys
COPY --chmod=0755 docker/inference-host/healthcheck.sh /usr/local/bin/ovcache-host-healthcheck
COPY --chmod=0755 docker/inference-host/seed-models.sh /usr/local/bin/ovcache-seed-models

# /var/cache/openvino (the cache) and /etc/ssh/host-keys are meant to be volumes; they are
# not declared with VOLUME, which would give every one-shot container and the host-worker
# image anonymous volumes they cannot drop. The compose file mounts named ones.
EXPOSE 22
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["/usr/local/bin/ovcache-host-healthcheck"]
# sshd must start as root to switch to the logged-in user; the only account it
# lets in is ovcache (see sshd_config).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ovcache-host-entrypoint"]
CMD ["/usr/sbin/sshd", "-D", "-e"]

# --- the per-host worker: the host plus an Airflow Celery worker ----------------------------
FROM host AS host-worker
ARG PYTHON_VERSION
ARG OPENVINO_VERSION=2026.4.1
ARG AIRFLOW_VERSION=3.3.2
ARG OVCACHE_UID=10001
# Airflow is only supported installed against its constraints file for the version and
# Python in use. Without a route to GitHub, point this at a mirror, or at the pins this
# repository keeps (docker/build/constraints/, mounted at /tmp/ovcache-constraints), as
# docker-compose.stand-ins.yaml does.
ARG AIRFLOW_CONSTRAINTS_URL=https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PYTHON_VERSION}.txt
ENV AIRFLOW_HOME=/opt/airflow \
    PATH=/opt/ovcache/bin:${PATH}

# Airflow goes into the agent's own virtualenv, with OpenVINO held at the host's
# version, so the local transport's default agent (this Python) is the same runtime
# the SSH path runs.
RUN --mount=type=bind,from=wheel,source=/dist,target=/tmp/ovcache-dist \
    --mount=type=bind,source=docker/build/constraints,target=/tmp/ovcache-constraints \
    /opt/ovcache/bin/pip install --no-cache-dir \
        --constraint "${AIRFLOW_CONSTRAINTS_URL}" \
        "apache-airflow[celery,postgres]==${AIRFLOW_VERSION}" \
        "openvino==${OPENVINO_VERSION}" \
        -r /tmp/ovcache-dist/requirements-airflow.txt \
    && install -d -o ovcache -g ovcache -m 0775 /opt/airflow /opt/airflow/logs /opt/airflow/dags \
    && airflow version

COPY --chmod=0755 docker/inference-host/worker-entrypoint.sh /usr/local/bin/ovcache-worker-entrypoint

# Numeric, so an orchestrator can tell it is not root without reading /etc/passwd.
USER ${OVCACHE_UID}:${OVCACHE_UID}
WORKDIR /opt/airflow
EXPOSE 8793
HEALTHCHECK --interval=30s --timeout=30s --start-period=60s --retries=5 \
    CMD ["/bin/bash", "-c", "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d \"celery@${HOSTNAME}\""]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ovcache-worker-entrypoint"]
CMD ["celery", "worker"]
