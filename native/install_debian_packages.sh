#!/usr/bin/env bash
# Installs the Debian packages native mode and the tests need, only when a command is missing.
set -euo pipefail
declare -A need=(
  [prometheus]=prometheus [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager [amtool]=prometheus-alertmanager
  [rabbitmq-server]=rabbitmq-server [redis-server]=redis-server [chromium]=chromium
  [prometheus-redis-exporter]=prometheus-redis-exporter [shellcheck]=shellcheck
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing Debian packages: ${packages[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -q

# Native mode starts what it needs itself, as the user, on 127.0.0.1. The packages' own system
# services (rabbitmq-server, redis-server, prometheus, prometheus-alertmanager) must not start: they
# would hold 5672/6379/9090/9093 and collide with native mode and with `docker compose up`.
# A policy-rc.d answering 101 ("action forbidden") makes invoke-rc.d and deb-systemd-invoke skip
# the start during installation; it is removed afterwards (one that was already there is kept).
POLICY=/usr/sbin/policy-rc.d
own_policy=
remove_policy() { if [ -n "$own_policy" ]; then $SUDO rm -f "$POLICY"; fi; }
trap remove_policy EXIT
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# Written by native/install_debian_packages.sh while it installs packages.\nexit 101\n' \
    | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  own_policy=yes
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
remove_policy
own_policy=

# On a systemd host the packages also enabled their units for the next boot: disable the units of
# the packages installed just now (nothing else is touched), and stop any that runs anyway.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  disabled=()
  for unit in rabbitmq-server redis-server prometheus prometheus-alertmanager; do
    case " ${packages[*]} " in *" $unit "*) ;; *) continue ;; esac
    if $SUDO systemctl disable --now "$unit.service" >/dev/null 2>&1; then disabled+=("$unit"); fi
  done
  if [ ${#disabled[@]} -gt 0 ]; then
    echo "disabled the system services of the new packages (native mode runs its own): ${disabled[*]}"
    echo "  (to run one as a system service anyway: sudo systemctl enable --now <name>)"
  fi
fi
