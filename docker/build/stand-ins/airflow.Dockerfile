# Stand-in for apache/airflow:3.3.2-python3.11, on the Python stand-in (Debian's
# Python 3.11). Laid out like the official image where the deployment relies on it:
# the user airflow (uid 50000, group 0) with Airflow installed by pip into its user
# site (~/.local, PIP_USER=true), AIRFLOW_HOME=/opt/airflow, AIRFLOW_VERSION in the
# environment, curl for healthchecks, dumb-init and an /entrypoint that migrates the
# database, creates the admin user and runs bare sub-commands as `airflow ...`.
# Only the providers this deployment uses are installed. docs/deployment.md lists
# every difference from the official image.
ARG PYTHON_IMAGE=ovcache-stand-in/python:3.11-bookworm
FROM ${PYTHON_IMAGE}
ARG AIRFLOW_VERSION=3.3.2
ARG AIRFLOW_EXTRAS=celery,fab,postgres,redis,ssh
ARG AIRFLOW_UID=50000
# Relative to the build context (docker/build): the pins made by make-constraints.sh.
ARG AIRFLOW_CONSTRAINTS=constraints/airflow-3.3.2-python3.11.txt
ENV AIRFLOW_VERSION=${AIRFLOW_VERSION} \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    PIP_USER=true \
    PIP_NO_CACHE_DIR=1 \
    PATH=/home/airflow/.local/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl dumb-init \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
    && install -d -o airflow -g 0 -m 0775 /opt/airflow /opt/airflow/dags /opt/airflow/logs /opt/airflow/plugins

COPY --chmod=0755 stand-ins/airflow-entrypoint.sh /entrypoint

USER ${AIRFLOW_UID}
WORKDIR /opt/airflow
RUN --mount=type=bind,source=constraints,target=/tmp/constraints \
    pip install "apache-airflow[${AIRFLOW_EXTRAS}]==${AIRFLOW_VERSION}" \
        --constraint "/tmp/${AIRFLOW_CONSTRAINTS}" \
    && airflow version
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
