#!/usr/bin/env bash
# A local 3-node clinlog cluster on loopback, in one command:
#   scripts/cluster.sh [BASE_DIR]        (default ./data/cluster)
# Node n serves the API on 127.0.0.1:75n5 and Raft on 127.0.0.1:75n6
# (n = 1..3), data in BASE_DIR/node<n>, logs in BASE_DIR/node<n>.log.
# Node 1 starts a new cluster from its store (created with `clinlog init`
# the first time); nodes 2 and 3 get empty member stores sharing node 1's
# keys (`clinlog init --replica-of`), start with --join, and are added with
# `clinlog cluster add` (they catch up, then become voters). Ctrl-C stops
# all three. See docs/replication.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-$repo/data/cluster}
bin=$repo/build

if [ ! -x "$bin/clinlogd" ] || [ ! -x "$bin/clinlog" ]; then
  if ! dpkg -s librocksdb-dev >/dev/null 2>&1 || ! dpkg -s libraft-dev >/dev/null 2>&1; then
    bash "$repo/scripts/install-deps.sh"
  fi
  [ -f "$bin/CMakeCache.txt" ] || cmake -S "$repo" -B "$bin" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$bin" -j2 --target clinlogd clinlog
fi

mkdir -p "$base"
[ -d "$base/node1/db" ] || "$bin/clinlog" init "$base/node1" --admin admin --organization "${CLINLOG_ORG:-Demo Hospital}"
for n in 2 3; do
  [ -d "$base/node$n/db" ] || "$bin/clinlog" init "$base/node$n" --replica-of "$base/node1"
done

pids=()
stop() {
  trap - INT TERM EXIT
  echo "== stopping the cluster"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
}
trap stop INT TERM EXIT

for n in 1 2 3; do
  join=
  [ "$n" = 1 ] || join=--join
  "$bin/clinlogd" --data "$base/node$n" --dev --listen "127.0.0.1:75${n}5" --node-id "$n" \
    --raft-listen "127.0.0.1:75${n}6" $join >"$base/node$n.log" 2>&1 &
  pids+=($!)
done

# wait for node 1 to lead, then add the others (a no-op when they are members already)
for _ in $(seq 50); do
  "$bin/clinlog" cluster status --server 127.0.0.1:7515 --plaintext >/dev/null 2>&1 && break
  sleep 0.2
done
for n in 2 3; do
  "$bin/clinlog" cluster status --server 127.0.0.1:7515 --plaintext 2>/dev/null |
    grep -qE "^ *$n +voter" ||
    "$bin/clinlog" cluster add "$n" "127.0.0.1:75${n}6" "127.0.0.1:75${n}5" \
      --server 127.0.0.1:7515 --plaintext
done
"$bin/clinlog" cluster status --server 127.0.0.1:7515 --plaintext
echo "== 3 nodes up: API on 127.0.0.1:7515, :7525, :7535 (any node takes writes); Ctrl-C stops them"
wait
