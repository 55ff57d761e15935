# Stand-in for python:3.11-slim-bookworm: Debian bookworm's own Python 3.11, with pip
# and venv, on the debootstrapped root file system (docker/build/stand-in-bases.sh).
# How it differs from the official image: docs/deployment.md.
ARG DEBIAN_IMAGE=ovcache-stand-in/debian:bookworm
FROM ${DEBIAN_IMAGE}

# Debian marks its Python as externally managed (PEP 668); the official image's Python
# is not, and the deployment's Dockerfiles `pip install` into it, so the mark goes.
# pip is pointed at the system CA bundle, which includes this machine's local CAs
# (the root file system was made with them): pip in a venv would otherwise use certifi's.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-venv python-is-python3 \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \
    && python --version
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
CMD ["python3"]
