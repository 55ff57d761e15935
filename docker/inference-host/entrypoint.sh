#!/bin/bash
# Entrypoint of an inference host: prepare host keys, the cache directory and the
# privilege-separation directory, then run the command (sshd -D -e by default).
#
# Runs as root (sshd needs it to switch to the logged-in user). Idempotent: every
# start checks the same things and changes only what is missing or wrong.
set -euo pipefail

host_keys="/etc/ssh/host-keys"
host_key="${host_keys}/ssh_host_ed25519_key"
cache_dir="${OVCACHE_CACHE_DIR:-/var/cache/openvino}"
authorized_keys="/run/secrets/ovcache_authorized_keys"
name="${OVCACHE_HOST:-$(hostname)}"

log() { echo "ovcache-host[${name}]: $*" >&2; }

# 1. The host key: made once, on the first start, in the host-keys volume. Later starts
#    reuse it, so the key pinned in Airflow stays valid across image updates.
install -d -m 0755 "${host_keys}"
if [[ ! -s "${host_key}" ]]; then
    rm -f "${host_key}" "${host_key}.pub"
    ssh-keygen -q -t ed25519 -N '' -C "${name}" -f "${host_key}"
    log "generated a new host key in ${host_keys} (first start of this volume)"
fi
chown root:root "${host_key}" "${host_key}.pub"
chmod 0600 "${host_key}"
chmod 0644 "${host_key}.pub"
log "host key $(ssh-keygen -l -f "${host_key}.pub" | awk '{print $2}')"
log "pin it in Airflow's SSH connection as host_key: $(awk '{print $1, $2}' "${host_key}.pub")"

# 2. The cache directory belongs to ovcache. A fresh volume already does (it is copied
#    from the image); a bind mount made by root is handed over here, top level only:
#    blobs below it are never touched by the entrypoint.
install -d "${cache_dir}"
if [[ "$(stat -c '%U' "${cache_dir}")" != "ovcache" ]]; then
    chown ovcache:ovcache "${cache_dir}"
    chmod 2770 "${cache_dir}"
    log "gave ${cache_dir} to ovcache"
fi

# 3. Who may log in.
if [[ -s "${authorized_keys}" ]]; then
    log "$(grep -cvE '^[[:space:]]*(#|$)' "${authorized_keys}" || true) authorized key(s) in ${authorized_keys}"
else
    log "warning: ${authorized_keys} is missing or empty; sshd will refuse every login"
fi

install -d -m 0755 /run/sshd
/usr/sbin/sshd -t
exec "$@"
