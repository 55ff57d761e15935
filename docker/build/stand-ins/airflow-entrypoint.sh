#!/bin/bash
# /entrypoint of the Airflow stand-in. It does what this deployment asks of the official
# image's entrypoint, and no more:
#   - waits until the metadata database answers (`airflow db check`, CONNECTION_CHECK_*);
#   - _AIRFLOW_DB_MIGRATE: `airflow db migrate`; _AIRFLOW_WWW_USER_CREATE: the admin user
#     from _AIRFLOW_WWW_USER_USERNAME / _AIRFLOW_WWW_USER_PASSWORD (FAB auth manager);
#   - `bash ...` and `python ...` run as they are; anything else runs as `airflow ...`
#     (`scheduler` and `airflow scheduler` are the same).
# Run as root, it also finds Airflow in the airflow user's site-packages.
set -euo pipefail

unset PIP_USER   # so virtualenvs made at run time install into themselves
umask 0002       # group 0 shares what is written, for any uid in group 0

if ! whoami >/dev/null 2>&1; then
    export HOME="${AIRFLOW_USER_HOME_DIR}"
fi
if [[ "$(id -u)" == "0" ]]; then
    site="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    export PYTHONPATH="${AIRFLOW_USER_HOME_DIR}/.local/lib/python${site}/site-packages${PYTHONPATH:+:${PYTHONPATH}}"
fi

tries="${CONNECTION_CHECK_MAX_COUNT:-20}"
pause="${CONNECTION_CHECK_SLEEP_TIME:-3}"
if (( tries > 0 )); then
    for (( i = 1; ; i++ )); do
        if check="$(airflow db check 2>&1)"; then
            break
        fi
        if (( i >= tries )); then
            echo "airflow stand-in: the metadata database did not answer after ${tries} tries:" >&2
            echo "${check}" >&2
            exit 1
        fi
        sleep "${pause}"
    done
fi

if [[ -n "${_AIRFLOW_DB_MIGRATE:-}" ]]; then
    airflow db migrate
fi
if [[ -n "${_AIRFLOW_WWW_USER_CREATE:-}" ]]; then
    password="${_AIRFLOW_WWW_USER_PASSWORD:-}"
    unset _AIRFLOW_WWW_USER_PASSWORD
    if [[ -z "${password}" ]]; then
        echo "airflow stand-in: _AIRFLOW_WWW_USER_PASSWORD is empty; set the admin password" >&2
        exit 1
    fi
    # An existing user is kept, as the official entrypoint does.
    airflow users create --username "${_AIRFLOW_WWW_USER_USERNAME:-admin}" --password "${password}" \
        --firstname "${_AIRFLOW_WWW_USER_FIRSTNAME:-Airflow}" --lastname "${_AIRFLOW_WWW_USER_LASTNAME:-Admin}" \
        --email "${_AIRFLOW_WWW_USER_EMAIL:-airflowadmin@example.com}" --role "${_AIRFLOW_WWW_USER_ROLE:-Admin}" || true
fi

case "${1:-}" in
    bash) shift; exec /bin/bash "$@" ;;
    python) shift; exec python "$@" ;;
    airflow) shift ;;
esac
exec airflow "$@"
