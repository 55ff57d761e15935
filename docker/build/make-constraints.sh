#!/bin/bash
# Write the pip constraints file the stand-in images install Airflow under.
#
#   docker/build/make-constraints.sh [PYTHON]        (default: python3, which must be 3.11)
#
# The official images install Airflow under Airflow's own constraints file, which is
# published on GitHub (raw.githubusercontent.com/apache/airflow/constraints-X.Y.Z/...).
# A machine that reaches PyPI but not GitHub cannot read it, so this script resolves the
# same install once against PyPI and pins every distribution it picked:
#
#   apache-airflow[celery,fab,postgres,redis,ssh]==AIRFLOW_VERSION, plus what
#   pyproject.toml asks for (the agent, the airflow, celery and encryption extras)
#   with openvino==OPENVINO_VERSION
#
# into docker/build/constraints/airflow-AIRFLOW_VERSION-pythonX.Y.txt. The file is
# committed, so every build installs the same versions until this is run again.
# Environment: AIRFLOW_VERSION (default 3.3.2), OPENVINO_VERSION (default 2026.4.1).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
python="${1:-python3}"
airflow_version="${AIRFLOW_VERSION:-3.3.2}"
openvino_version="${OPENVINO_VERSION:-2026.4.1}"
extras="celery,fab,postgres,redis,ssh"

py_version="$("${python}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
out="${here}/constraints/airflow-${airflow_version}-python${py_version}.txt"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

"${python}" -m venv "${work}/venv"
"${work}/venv/bin/pip" install --quiet --upgrade pip
"${python}" "${here}/requirements.py" "${repo}/pyproject.toml" --extra airflow --extra celery --extra encryption \
    --exclude openvino > "${work}/project.txt"
"${work}/venv/bin/pip" install --quiet --dry-run --ignore-installed --report "${work}/report.json" \
    "apache-airflow[${extras}]==${airflow_version}" "openvino==${openvino_version}" -r "${work}/project.txt"

{
    echo "# pip constraints for Airflow ${airflow_version} on Python ${py_version}, made by docker/build/make-constraints.sh"
    echo "# on $(date -u +%Y-%m-%d) from PyPI: apache-airflow[${extras}]==${airflow_version}, openvino==${openvino_version}"
    echo "# and the requirements of pyproject.toml. Stands in for Airflow's own constraints file,"
    echo "# which is published on GitHub; run the script again to move the pins."
    "${work}/venv/bin/python" - "${work}/report.json" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
pins = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
for name in sorted(pins):
    print(f"{name}=={pins[name]}")
PY
} > "${out}.tmp"
mv "${out}.tmp" "${out}"
echo "make-constraints: wrote ${out} ($(grep -vc '^#' "${out}") pins)" >&2
