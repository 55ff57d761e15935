#!/bin/bash
# sshd's AuthorizedKeysCommand: print the keys the given user may log in with.
#
# sshd runs it as `nobody` at every login, so a key added to or removed from the
# mounted file takes effect at the next login, without a restart. Only the ovcache
# user has keys; a file that others may write is refused rather than trusted.
# The second argument (a file) is for tests; sshd passes only the user name.
set -euo pipefail

user="${1:-}"
keys="${2:-/run/secrets/ovcache_authorized_keys}"

[[ "${user}" == "ovcache" ]] || exit 0
if [[ ! -r "${keys}" ]]; then
    echo "ovcache-authorized-keys: ${keys} is missing or unreadable; no key can log in" >&2
    exit 0
fi
mode="$(stat -L -c '%a' "${keys}")"
if (( 8#${mode} & 8#022 )); then
    echo "ovcache-authorized-keys: ${keys} is writable by group or others (mode ${mode}); refusing it" >&2
    exit 0
fi
# Comments and blank lines are dropped; key lines may carry options (restrict, from=...).
grep -vE '^[[:space:]]*(#|$)' "${keys}" || true
