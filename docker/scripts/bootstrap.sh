#!/bin/bash
# First step of a deployment: docker/.env with fresh secrets, and the SSH key pair.
#
#   docker/scripts/bootstrap.sh [--env-file PATH] [--secrets-dir PATH]
#
# Makes what is missing and keeps what exists, so running it again is harmless:
#   docker/.env                    from .env.example, every empty secret filled with
#                                  random bytes, AIRFLOW_UID set; mode 0600
#   secrets/ovcache_ed25519(.pub)  the key Airflow logs in to the hosts with
#   secrets/authorized_keys        the public keys the hosts accept (this one, `restrict`ed)
# Needs bash, coreutils and ssh-keygen (openssh-client); no Docker.
set -euo pipefail

docker_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_file="${docker_dir}/.env"
secrets_dir=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --env-file) env_file="$2"; shift 2 ;;
        --secrets-dir) secrets_dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bootstrap: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

command -v ssh-keygen >/dev/null || { echo "bootstrap: ssh-keygen not found; install openssh-client" >&2; exit 1; }

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
# A Fernet key is 32 random bytes in url-safe base64.
fernet_key() { head -c 32 /dev/urandom | base64 | tr '+/' '-_'; }

if [[ "$(id -u)" == "0" ]]; then
    airflow_uid=50000
else
    airflow_uid="$(id -u)"
fi

# --- docker/.env ------------------------------------------------------------------------
if [[ -e "${env_file}" ]]; then
    echo "bootstrap: keeping ${env_file}"
else
    umask 077
    tmp="${env_file}.tmp.$$"
    while IFS= read -r line || [[ -n "${line}" ]]; do
        case "${line}" in
            POSTGRES_PASSWORD=|REDIS_PASSWORD=|AIRFLOW_API_SECRET_KEY=|AIRFLOW_JWT_SECRET=|AIRFLOW_ADMIN_PASSWORD=)
                line="${line}$(random_hex)" ;;
            AIRFLOW_FERNET_KEY=)
                line="${line}$(fernet_key)" ;;
            AIRFLOW_UID=*)
                line="AIRFLOW_UID=${airflow_uid}" ;;
        esac
        printf '%s\n' "${line}"
    done < "${docker_dir}/.env.example" > "${tmp}"
    chmod 0600 "${tmp}"
    mv "${tmp}" "${env_file}"
    umask 022
    echo "bootstrap: wrote ${env_file} (AIRFLOW_UID=${airflow_uid}; the admin password is AIRFLOW_ADMIN_PASSWORD there)"
fi

# --- the SSH key pair --------------------------------------------------------------------
if [[ -z "${secrets_dir}" ]]; then
    secrets_dir="$(sed -n 's/^OVCACHE_SECRETS_DIR=//p' "${env_file}" | tail -n 1)"
    secrets_dir="${secrets_dir:-./secrets}"
fi
[[ "${secrets_dir}" == /* ]] || secrets_dir="${docker_dir}/${secrets_dir#./}"
install -d -m 0700 "${secrets_dir}"
chmod 0755 "${secrets_dir}"   # the hosts' sshd reads authorized_keys through it, as nobody

key="${secrets_dir}/ovcache_ed25519"
if [[ -s "${key}" ]]; then
    echo "bootstrap: keeping the SSH key ${key}"
else
    rm -f "${key}" "${key}.pub"
    ssh-keygen -q -t ed25519 -N '' -C "airflow-ovcache $(date -u +%Y-%m-%d)" -f "${key}"
    echo "bootstrap: made the SSH key ${key} ($(ssh-keygen -l -f "${key}.pub" | awk '{print $2}'))"
fi
# The Airflow containers run as AIRFLOW_UID with group 0. Run as that user, the key is
# theirs (0600); run as root, it is shared with group 0 (0640).
if [[ "$(id -u)" == "0" ]]; then
    chgrp 0 "${key}"
    chmod 0640 "${key}"
else
    chmod 0600 "${key}"
fi

authorized="${secrets_dir}/authorized_keys"
if [[ -s "${authorized}" ]]; then
    echo "bootstrap: keeping ${authorized}"
else
    printf 'restrict %s\n' "$(cat "${key}.pub")" > "${authorized}"
    echo "bootstrap: wrote ${authorized}"
fi
chmod 0644 "${authorized}"

echo "bootstrap: next: docker compose up -d --build, then scripts/pin-host-keys.sh (docs/deployment.md)"
