#!/usr/bin/env bash
# Installs every build and test dependency of clinlog on Debian 12 (bookworm).
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      librocksdb-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
      libsodium-dev libcriterion-dev libjansson-dev libuv1-dev liblz4-dev libmicrohttpd-dev libssl-dev
      python3-grpcio python3-protobuf python3-nacl openssl clang tcpdump
      protobuf-compiler postgresql-15 libpq-dev gnuplot-nox)
BACKPORTS_PKGS=(libraft-dev)
RAFT_MIN=0.22

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
raft_ok=0
if v=$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null); then
  dpkg --compare-versions "$v" ge "$RAFT_MIN" && raft_ok=1
fi

# The independent FHIR validator and clients the tests run (tests/fhir,
# versions pinned in its package-lock.json). Node.js 20 comes with the
# machine; Debian's nodejs is the fallback.
npm_deps() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/fhir"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
    [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ] && [ $raft_ok -eq 1 ]; then
  npm_deps
  echo "install-deps: all dependencies present"
  exit 0
fi

# libraft 0.22 (cowsql fork) lives in bookworm-backports; 0.15 in main has
# known safety bugs, so the suite must be enabled.
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "install-deps: enabling bookworm-backports"
  echo "deb http://deb.debian.org/debian bookworm-backports main" |
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
[ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ $raft_ok -eq 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"
fi
v=$(dpkg-query -W -f='${Version}' libraft-dev)
dpkg --compare-versions "$v" ge "$RAFT_MIN" || { echo "install-deps: libraft-dev $v < $RAFT_MIN" >&2; exit 1; }
npm_deps
echo "install-deps: done (libraft-dev $v)"
