#!/usr/bin/env bash
# The main job: a single-node clinlogd on an embedded data directory.
#   scripts/clinlogd.sh [DATA_DIR]     (default ./data/node1)
# Builds clinlog and clinlogd if needed, creates the data directory with
# `clinlog init` the first time (the admin's signing key lands in
# DATA_DIR/keys/admin.key), then runs clinlogd in --dev mode (plaintext, on
# loopback only) at 127.0.0.1:7525, with the FHIR R4 REST API at
# http://127.0.0.1:7528/fhir/R4, until Ctrl-C / SIGTERM.
# Environment: CLINLOGD_LISTEN (default 127.0.0.1:7525), CLINLOGD_HTTP (the FHIR
# API, default 127.0.0.1:7528; "off" for none), CLINLOGD_ARGS (extra flags,
# e.g. TLS: "--tls-cert server.pem --tls-key server.key" instead of --dev).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$repo/data/node1}
listen=${CLINLOGD_LISTEN:-127.0.0.1:7525}
http=${CLINLOGD_HTTP:-127.0.0.1:7528}

if [ ! -x "$repo/build/clinlogd" ] || [ ! -x "$repo/build/clinlog" ]; then
  if ! dpkg -s librocksdb-dev >/dev/null 2>&1 || ! dpkg -s libgrpc-dev >/dev/null 2>&1; then
    bash "$repo/scripts/install-deps.sh"
  fi
  [ -f "$repo/build/CMakeCache.txt" ] || cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$repo/build" -j2 --target clinlogd clinlog
fi

if [ ! -d "$data/db" ]; then
  echo "== creating $data"
  "$repo/build/clinlog" init "$data" --admin admin --organization "${CLINLOG_ORG:-Demo Hospital}"
fi

dev=--dev
case " ${CLINLOGD_ARGS:-} " in *" --tls-cert "*) dev= ;; esac
http_args=()
[ "$http" = off ] || http_args=(--http-listen "$http")
echo "== clinlogd on $listen (data: $data; stop with Ctrl-C)"
# shellcheck disable=SC2086
exec "$repo/build/clinlogd" --data "$data" --listen "$listen" "${http_args[@]}" $dev ${CLINLOGD_ARGS:-}
