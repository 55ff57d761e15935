# The Airflow image of the deployment: the official apache/airflow image with the
# airflow-ovcache provider installed. It runs the API server, scheduler, DAG processor,
# triggerer and the default-queue Celery workers. Those reach inference hosts over
# SSH and never run the agent themselves, so OpenVINO is deliberately left out; a
# worker that runs on an inference host uses the host-worker target of
# inference-host.Dockerfile instead.
#
# Build context: the repository root (docker compose does this for you):
#   docker build -f docker/airflow.Dockerfile -t airflow-ovcache/airflow:local .

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- the provider as a wheel, built from this checkout -------------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY airflow_ovcache/ airflow_ovcache/
COPY docker/build/requirements.py /usr/local/bin/ovcache-requirements
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && python /usr/local/bin/ovcache-requirements pyproject.toml --extra airflow --exclude openvino \
        > /dist/requirements-airflow.txt

# --- Airflow with the provider ---------------------------------------------------------
FROM ${AIRFLOW_IMAGE}
# Pinning apache-airflow to the image's own version keeps pip from upgrading or
# downgrading Airflow while it resolves the provider's requirements.
RUN --mount=type=bind,from=wheel,source=/dist,target=/tmp/ovcache-dist \
    pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/ovcache-dist/requirements-airflow.txt \
    && pip install --no-cache-dir --no-deps /tmp/ovcache-dist/airflow_ovcache-*.whl \
    && python -c "import airflow_ovcache.get_provider_info as p; print('airflow-ovcache', p.get_provider_info()['versions'][0])"
# The nightly reports' volume (docker-compose.yaml): a new named volume takes this folder's
# owner, so the report task (any AIRFLOW_UID, group 0) can write it and the API server read it.
RUN mkdir -p /opt/airflow/ovcache-reports && chmod 0775 /opt/airflow/ovcache-reports
