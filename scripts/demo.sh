#!/usr/bin/env bash
# clinlog end-to-end demo: build the CLI if needed, create a log, append the
# example clinical story (examples/demo-events.ndjson), read a patient's
# stream, prove and check one event's inclusion, sign a checkpoint and
# verify the whole data directory.
#
# usage: scripts/demo.sh [--fresh] [DIR]
#   DIR      data directory to create (default: <repo>/data/demo)
#   --fresh  remove DIR first if it exists (only if it is a clinlog data dir)
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLINLOG="$ROOT/build/clinlog"
EVENTS="$ROOT/examples/demo-events.ndjson"

fresh=0
dir=""
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "demo: unknown option $arg" >&2; usage >&2; exit 2 ;;
    *)
      [ -z "$dir" ] || { echo "demo: only one DIR may be given" >&2; exit 2; }
      dir="$arg" ;;
  esac
done
# A DIR given on the command line is relative to the caller's directory.
if [ -z "$dir" ]; then
  dir="$ROOT/data/demo"
elif [ "${dir#/}" = "$dir" ]; then
  dir="$PWD/$dir"
fi

# Check the data dir before spending time on a build.
if [ -e "$dir" ]; then
  if [ $fresh -eq 0 ]; then
    echo "demo: $dir already exists; pass --fresh to replace it" >&2
    exit 1
  fi
  # Refuse to delete anything that does not look like a clinlog data dir.
  if [ -n "$(ls -A "$dir" 2>/dev/null)" ] && ! { [ -d "$dir/db" ] && [ -d "$dir/keys" ]; }; then
    echo "demo: $dir is not a clinlog data directory; not removing it" >&2
    exit 1
  fi
fi

section() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- build
section "Build"
cd "$ROOT"
if [ ! -x "$CLINLOG" ] && ! dpkg -s librocksdb-dev >/dev/null 2>&1; then
  echo "build dependencies seem missing; running scripts/install-deps.sh"
  scripts/install-deps.sh
fi
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
# Incremental: a no-op when build/clinlog is up to date.
cmake --build build -j2 --target clinlog

[ $fresh -eq 0 ] || rm -rf -- "$dir"
mkdir -p "$(dirname "$dir")"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/clinlog-demo.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

section "Create the log: clinlog init $dir"
"$CLINLOG" init "$dir" --admin admin --organization "Main Hospital Health System (demo)"

section "Append the example story ($(grep -c . "$EVENTS") events)"
"$CLINLOG" append "$dir" --key "$dir/keys/admin.key" "$EVENTS"

section "First events of patient-1001 (clinlog read --stream patient-1001 --limit 5, one line each)"
# read prints one JSON object per event; keep seq, stream version, time, type, id.
"$CLINLOG" read "$dir" --stream patient-1001 --limit 5 |
  sed -E 's/^\{"seq":([0-9]+),"streamVersion":([0-9]+),"eventId":"([^"]+)","type":"([^"]+)".*"occurredAt":"([^"]+)".*/  seq \1  v\2  \5  \4  \3/'

section "Inclusion proof for event 10 (clinlog prove / verify-proof)"
"$CLINLOG" prove "$dir" inclusion 10 >"$tmp/proof.json"
echo "proof: $(wc -c <"$tmp/proof.json") bytes of JSON in a temporary file"
"$CLINLOG" verify-proof "$tmp/proof.json"

section "Signed checkpoint (clinlog checkpoint)"
"$CLINLOG" checkpoint "$dir" | tee "$tmp/checkpoint.txt"
"$CLINLOG" verify-proof "$tmp/proof.json" --checkpoint "$tmp/checkpoint.txt" --log-key "$dir/log.pub"

section "Verify everything (clinlog verify)"
"$CLINLOG" verify "$dir"

printf '\ndemo data directory: %s\n' "$dir"
