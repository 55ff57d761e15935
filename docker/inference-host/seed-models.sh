#!/bin/bash
# One-shot: put a small sample model repository into an empty /models, so a fresh
# stack has something to warm. A repository that has anything in it is left alone:
# rewriting model files would change their mtimes and make every blob stale.
set -euo pipefail

repository="${OVCACHE_REPOSITORY:-/models}"
mode="${OVCACHE_SEED_MODELS:-sample}"

if [[ "${mode}" == "none" ]]; then
    echo "ovcache-seed-models: OVCACHE_SEED_MODELS=none; leaving ${repository} as it is"
    exit 0
fi
if [[ -n "$(find "${repository}" -mindepth 1 -maxdepth 1 -print -quit)" ]]; then
    echo "ovcache-seed-models: ${repository} already holds models; nothing to do"
    exit 0
fi
echo "ovcache-seed-models: ${repository} is empty; building the sample repository"
exec ovcache sample-repository "${repository}" --model classifier:2 --model detector:1
