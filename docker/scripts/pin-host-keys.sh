#!/bin/bash
# Pin the SSH host key of inference hosts in docker/.env, read from the running host.
#
#   docker/scripts/pin-host-keys.sh [--replace] [SERVICE...]     (default: infer-1)
#
# For each service it reads /etc/ssh/host-keys/ssh_host_ed25519_key.pub through
# `docker compose exec`, a channel that does not cross the network, so nothing on the
# network can swap in its own key, and writes OVCACHE_<SERVICE>_HOST_KEY into .env.
# A key that differs from the one already pinned is refused unless --replace is given:
# a host key changes only when its volume was lost or replaced, or on purpose.
# Apply with `docker compose up -d` (recreates the services whose settings changed).
#
# Environment: COMPOSE (default "docker compose"), ENV_FILE (default docker/.env).
set -euo pipefail

docker_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_file="${ENV_FILE:-${docker_dir}/.env}"
read -r -a compose <<< "${COMPOSE:-docker compose}"
replace=false
services=()

for arg in "$@"; do
    case "${arg}" in
        --replace) replace=true ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "pin-host-keys: unknown option ${arg}" >&2; exit 2 ;;
        *) services+=("${arg}") ;;
    esac
done
[[ ${#services[@]} -gt 0 ]] || services=(infer-1)
[[ -f "${env_file}" ]] || { echo "pin-host-keys: ${env_file} not found; run scripts/bootstrap.sh first" >&2; exit 1; }

cd "${docker_dir}"
status=0
for service in "${services[@]}"; do
    variable="OVCACHE_$(tr 'a-z-' 'A-Z_' <<< "${service}")_HOST_KEY"
    if ! line="$("${compose[@]}" exec -T "${service}" cat /etc/ssh/host-keys/ssh_host_ed25519_key.pub)"; then
        echo "pin-host-keys: cannot read the host key of ${service}; is it running? (docker compose up -d ${service})" >&2
        status=1
        continue
    fi
    read -r key_type key_data _ <<< "${line}"
    if [[ "${key_type}" != "ssh-ed25519" || ! "${key_data}" =~ ^[A-Za-z0-9+/]+=*$ ]]; then
        echo "pin-host-keys: ${service} returned no ed25519 public key: ${line}" >&2
        status=1
        continue
    fi
    pin="${key_type} ${key_data}"
    current="$(sed -n "s/^${variable}=//p" "${env_file}" | tail -n 1)"
    current="${current%\"}"
    current="${current#\"}"
    if [[ "${current}" == "${pin}" ]]; then
        echo "pin-host-keys: ${service}: already pinned (${variable})"
        continue
    fi
    if [[ -n "${current}" && "${replace}" != "true" ]]; then
        echo "pin-host-keys: ${service} now presents ${pin}" >&2
        echo "pin-host-keys: but ${variable} pins ${current}" >&2
        echo "pin-host-keys: not replacing it; if the change is expected (a rotation, a recreated volume), rerun with --replace" >&2
        status=1
        continue
    fi
    tmp="${env_file}.tmp.$$"
    awk -v name="${variable}" -v value="${pin}" '
        BEGIN { done = 0 }
        index($0, name "=") == 1 { if (!done) print name "=" value; done = 1; next }
        { print }
        END { if (!done) print name "=" value }
    ' "${env_file}" > "${tmp}"
    chmod --reference="${env_file}" "${tmp}"
    mv "${tmp}" "${env_file}"
    echo "pin-host-keys: ${service}: pinned ${pin} in ${variable}"
done
[[ ${status} -ne 0 ]] || echo "pin-host-keys: apply with: docker compose up -d"
exit "${status}"
