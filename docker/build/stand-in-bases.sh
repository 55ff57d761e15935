#!/bin/bash
# Build local stand-ins for the official base images, from Debian bookworm's packages.
#
#   docker/build/stand-in-bases.sh [--rebuild]
#
# For a machine that can run a Docker engine but reach no image registry (only the
# Debian archive and PyPI). Makes, in the local image store:
#
#   ovcache-stand-in/debian:bookworm             debootstrap --variant=minbase, docker import
#   ovcache-stand-in/python:3.11-bookworm        Debian's python3 (3.11), pip and venv
#   ovcache-stand-in/postgres:15-bookworm        Debian's PostgreSQL 15, initialised like the official image
#   ovcache-stand-in/redis:7.0-bookworm          Debian's redis-server
#   ovcache-stand-in/airflow:3.3.2-python3.11    Airflow from PyPI under docker/build/constraints/
#
# docker/docker-compose.stand-ins.yaml builds the deployment on them; docs/deployment.md
# says how each differs from the official image it replaces. The Debian root file system
# is made once and kept as an image (--rebuild makes it again); the other images are
# ordinary builds, cached by the engine. Builds use the host's network (--network host)
# to reach the Debian archive and PyPI.
#
# Needs root (debootstrap), debootstrap and a Docker engine with BuildKit.
# Environment: DOCKER (default "docker"), DEBIAN_MIRROR (default http://deb.debian.org/debian),
# AIRFLOW_VERSION (default 3.3.2), STAND_IN_PREFIX (default ovcache-stand-in).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a docker <<< "${DOCKER:-docker}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
airflow_version="${AIRFLOW_VERSION:-3.3.2}"
prefix="${STAND_IN_PREFIX:-ovcache-stand-in}"
suite=bookworm
python_version=3.11   # bookworm's python3
rebuild=false

for arg in "$@"; do
    case "${arg}" in
        --rebuild) rebuild=true ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "stand-in-bases: unknown argument ${arg} (see --help)" >&2; exit 2 ;;
    esac
done

log() { echo "stand-in-bases: $*" >&2; }

export DOCKER_BUILDKIT=1

# --- the Debian root file system -------------------------------------------------------------
debian="${prefix}/debian:${suite}"
if [[ "${rebuild}" == "true" ]] || ! "${docker[@]}" image inspect "${debian}" >/dev/null 2>&1; then
    [[ "$(id -u)" == "0" ]] || { log "debootstrap needs root"; exit 1; }
    command -v debootstrap >/dev/null || { log "debootstrap not found; apt-get install debootstrap"; exit 1; }
    rootfs="$(mktemp -d /var/tmp/ovcache-stand-in-rootfs.XXXXXX)"
    trap 'rm -rf "${rootfs}"' EXIT
    log "debootstrap ${suite} from ${mirror} into ${rootfs}"
    debootstrap --variant=minbase --include=ca-certificates "${suite}" "${rootfs}" "${mirror}" >&2
    # Like the official images: updates and security updates on, the package lists and
    # the downloaded packages dropped, apt told not to keep either.
    rm -f "${rootfs}/etc/apt/sources.list"
    cat > "${rootfs}/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${mirror}
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    # This machine's own CAs (/usr/local/share/ca-certificates), for a network whose TLS
    # is inspected on the way to PyPI; none are added where there are none.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "${rootfs}/usr/local/share/ca-certificates/"
        chroot "${rootfs}" update-ca-certificates >/dev/null
    fi
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "${rootfs}/etc/apt/apt.conf.d/90ovcache-stand-in"
    rm -rf "${rootfs}/var/lib/apt/lists/"* "${rootfs}/var/cache/apt/"*.bin "${rootfs}/var/cache/apt/archives/"*.deb
    rm -f "${rootfs}/etc/hostname" "${rootfs}/etc/resolv.conf"
    log "importing ${debian}"
    tar -C "${rootfs}" --numeric-owner -c . | "${docker[@]}" import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "${debian}" >/dev/null
    rm -rf "${rootfs}"
    trap - EXIT
else
    log "keeping ${debian} (--rebuild makes it again)"
fi

# --- the images on top of it --------------------------------------------------------------------
build() {
    local tag="$1" dockerfile="$2"
    shift 2
    log "building ${tag}"
    nice -n 10 "${docker[@]}" build --network host --quiet --file "${here}/stand-ins/${dockerfile}" \
        --build-arg "DEBIAN_IMAGE=${debian}" --tag "${tag}" "$@" "${here}" >/dev/null
}

constraints="constraints/airflow-${airflow_version}-python${python_version}.txt"
[[ -f "${here}/${constraints}" ]] || {
    log "no ${here}/${constraints}; make it with docker/build/make-constraints.sh"
    exit 1
}
python_image="${prefix}/python:${python_version}-${suite}"
build "${python_image}" python.Dockerfile
build "${prefix}/postgres:15-${suite}" postgres.Dockerfile
build "${prefix}/redis:7.0-${suite}" redis.Dockerfile
build "${prefix}/airflow:${airflow_version}-python${python_version}" airflow.Dockerfile \
    --build-arg "PYTHON_IMAGE=${python_image}" \
    --build-arg "AIRFLOW_VERSION=${airflow_version}" \
    --build-arg "AIRFLOW_CONSTRAINTS=${constraints}"
log "done: $("${docker[@]}" image ls --format '{{.Repository}}:{{.Tag}}' "${prefix}/*" | sort | tr '\n' ' ')"
