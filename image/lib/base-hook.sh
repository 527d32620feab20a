#!/usr/bin/env bash
# mmdebstrap customize hook: the venv at /opt/vehicle-host with the project's dependencies.
# $1 is the root; VH_REQS is the requirements file; VH_WHEELS (optional) a directory of wheels built
# for this architecture (then nothing is fetched from the network).
set -euo pipefail
R=$1
chroot "$R" python3 -m venv --system-site-packages /opt/vehicle-host
cp "$VH_REQS" "$R/tmp/requirements.txt"
if [ -n "${VH_WHEELS:-}" ]; then
  mkdir -p "$R/tmp/wheels"
  cp "$VH_WHEELS"/*.whl "$R/tmp/wheels/"
  chroot "$R" /opt/vehicle-host/bin/pip install -q --no-cache-dir --no-index --find-links /tmp/wheels \
    -r /tmp/requirements.txt
  rm -rf "$R/tmp/wheels"
else
  chroot "$R" /opt/vehicle-host/bin/pip install -q --no-cache-dir -r /tmp/requirements.txt
fi
rm -f "$R/tmp/requirements.txt"
