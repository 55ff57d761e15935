#!/bin/bash
# Healthy when sshd answers on port 22 with an SSH banner.
set -euo pipefail
exec 3<>/dev/tcp/127.0.0.1/22
IFS= read -r -t 5 banner <&3
exec 3<&-
[[ "${banner}" == SSH-2.0-* ]]
