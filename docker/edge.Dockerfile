# Edge executor images: the deployment's two images with apache-airflow-providers-edge3 added.
#
#   airflow      the Airflow image (docker/airflow.Dockerfile) plus the Edge executor: the API
#                server then serves the edge workers' API (/edge_worker/v1), the scheduler
#                queues edge hosts' tasks for them.
#   edge-worker  the host-worker image (inference-host.Dockerfile, target host-worker) plus
#                the Edge executor: `airflow edge worker` on an inference host that only dials out.
#
# Both start from images the base compose file builds, so build those first:
#   cd docker && docker compose build
#   docker compose -f docker-compose.yaml -f docker-compose.edge.yaml up -d --build
ARG OVCACHE_AIRFLOW_IMAGE=airflow-ovcache/airflow:local
ARG OVCACHE_HOST_WORKER_IMAGE=airflow-ovcache/inference-host-worker:local

# hadolint ignore=DL3006
FROM ${OVCACHE_AIRFLOW_IMAGE} AS airflow
ARG AIRFLOW_VERSION=3.3.2
ARG EDGE3_VERSION=5.1.0
# Pinning apache-airflow keeps pip from moving Airflow while it adds the provider.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "apache-airflow-providers-edge3==${EDGE3_VERSION}" \
    && airflow providers get apache-airflow-providers-edge3

# hadolint ignore=DL3006
FROM ${OVCACHE_HOST_WORKER_IMAGE} AS edge-worker
ARG AIRFLOW_VERSION=3.3.2
ARG EDGE3_VERSION=5.1.0
ARG OVCACHE_UID=10001
USER 0:0
RUN /opt/ovcache/bin/pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "apache-airflow-providers-edge3==${EDGE3_VERSION}" \
    && airflow edge worker --help > /dev/null
# Back to the cache's owner: the worker and the agent it starts run as ovcache, never root.
USER ${OVCACHE_UID}:${OVCACHE_UID}
# The worker's pid and status files live in AIRFLOW_HOME; `airflow edge status` reads them.
HEALTHCHECK --interval=30s --timeout=30s --start-period=60s --retries=5 CMD ["airflow", "edge", "status"]
CMD ["edge", "worker"]
