#!/bin/bash
# Entrypoint of the per-host Celery worker: check the host side, then run Airflow.
#
# The worker runs as ovcache, the owner of the cache directory. It refuses to start
# when it could only fail every task: an unwritable cache, or an agent that does not
# start.
set -euo pipefail

cache_dir="${OVCACHE_CACHE_DIR:-/var/cache/openvino}"
repository="${OVCACHE_REPOSITORY:-/models}"

if [[ ! -d "${cache_dir}" || ! -w "${cache_dir}" ]]; then
    echo "ovcache-worker: cache directory ${cache_dir} is missing or not writable by $(id -un) (uid $(id -u)); mount the host's cache volume there, owned by uid $(id -u)" >&2
    exit 1
fi
if [[ ! -d "${repository}" ]]; then
    echo "ovcache-worker: warning: model repository ${repository} is not mounted" >&2
fi
if ! ovcache version; then
    echo "ovcache-worker: the ovcache agent does not start in this image" >&2
    exit 1
fi

# Bare sub-commands (`celery worker -q infer-2`) are Airflow's.
if [[ $# -gt 0 && "$1" != -* && "$1" != "airflow" && "$1" != /* && "$1" != "bash" ]]; then
    set -- airflow "$@"
fi
exec "$@"
