#!/usr/bin/env bash
# Installs every build and test dependency of clinlog on Debian 12 (bookworm).
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      librocksdb-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
      libsodium-dev libcriterion-dev libjansson-dev libuv1-dev libmicrohttpd-dev libssl-dev
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
# etcd 3.4 (clinlog-bench etcd's peer) is installed apart: see install_etcd.
etcd_ok=0
dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q "install ok installed" && etcd_ok=1
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

# Debian's etcd-server enables and starts a system etcd on 127.0.0.1:2379
# when installed. clinlog-bench etcd runs its own three members on free
# ports and nothing else needs one, so the package's service is kept from
# starting: a policy-rc.d that denies every start for the time of the
# install (only when the machine has none of its own, e.g. containers
# already ship one; ours is removed afterwards, also on failure), then the
# unit disabled and stopped where systemd runs.
install_etcd() {
  local own=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# install-deps.sh: no service starts while etcd-server installs\nexit 101\n' |
      $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    own=1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends etcd-server || rc=$?
  [ $own -eq 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || return $rc
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
  echo "install-deps: etcd-server $(dpkg-query -W -f='${Version}' etcd-server) installed," \
    "its system service not started"
}

if [ ${#missing[@]} -eq 0 ] && [ $raft_ok -eq 1 ] && [ $etcd_ok -eq 1 ]; then
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
[ $etcd_ok -eq 1 ] || install_etcd
if [ $raft_ok -eq 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"
fi
v=$(dpkg-query -W -f='${Version}' libraft-dev)
dpkg --compare-versions "$v" ge "$RAFT_MIN" || { echo "install-deps: libraft-dev $v < $RAFT_MIN" >&2; exit 1; }
npm_deps
echo "install-deps: done (libraft-dev $v)"
