#!/bin/bash
# Entrypoint of the PostgreSQL stand-in: on an empty PGDATA, make the cluster the way
# the official image does from POSTGRES_USER (default postgres), POSTGRES_PASSWORD
# (required) and POSTGRES_DB (default: the user's name); then run the command.
set -euo pipefail

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-${user}}"

if [[ "${1:-}" == "postgres" && ! -s "${PGDATA}/PG_VERSION" ]]; then
    if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
        echo "postgres stand-in: POSTGRES_PASSWORD is empty; refusing to make a database anyone may log in to" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD}" > "${pwfile}"
    initdb --username="${user}" --pwfile="${pwfile}" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "${pwfile}"
    echo "host all all all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
    echo "listen_addresses = '*'" >> "${PGDATA}/postgresql.conf"
    # The database, on a server that listens on the socket only until it is made.
    pg_ctl --silent --wait --options "-c listen_addresses=''" start
    if [[ "${db}" != "postgres" ]]; then
        createdb --username="${user}" --owner="${user}" "${db}"
    fi
    pg_ctl --silent --wait --mode=fast stop
    echo "postgres stand-in: initialised ${PGDATA} (user ${user}, database ${db})" >&2
fi
exec "$@"
