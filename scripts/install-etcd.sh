#!/usr/bin/env bash
# Installs etcd 3.4 from Debian (etcd-server), the peer of clinlog-bench
# etcd, on demand: bench/run calls it when etcd is missing. It is kept out of
# scripts/install-deps.sh because nothing else needs etcd and CI does not run
# the benchmarks. Idempotent: when etcd-server is installed it only says so.
#
# Debian's etcd-server enables and starts a system etcd on 127.0.0.1:2379
# when installed. clinlog-bench etcd runs its own three members on free
# ports, so the package's service is kept from starting: a policy-rc.d that
# denies every start for the time of the install (only when the machine has
# none of its own; ours is removed afterwards, also on failure), then the
# unit disabled and stopped where systemd runs.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q "install ok installed"; then
  echo "install-etcd: etcd-server $(dpkg-query -W -f='${Version}' etcd-server) already installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
own=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# install-etcd.sh: no service starts while etcd-server installs\nexit 101\n' |
    $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  own=1
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends etcd-server
if [ $own -eq 1 ]; then
  $SUDO rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi
if [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi
echo "install-etcd: etcd-server $(dpkg-query -W -f='${Version}' etcd-server) installed," \
  "its system service not started"
