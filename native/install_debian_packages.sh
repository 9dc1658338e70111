#!/usr/bin/env bash
# Installs the Debian packages native mode and the tests need, only when a command is missing.
set -euo pipefail
declare -A need=(
  [prometheus]=prometheus [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager [amtool]=prometheus-alertmanager
  [rabbitmq-server]=rabbitmq-server [redis-server]=redis-server [chromium]=chromium
  [prometheus-redis-exporter]=prometheus-redis-exporter
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "installing Debian packages: $packages"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -q
# policy-rc.d keeps services from auto-starting; native mode starts what it needs itself.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $packages
