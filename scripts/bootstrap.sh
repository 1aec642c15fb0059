#!/usr/bin/env bash
# Installs what nspod needs on a Debian 12 host, idempotently and quickly when all is present:
# host packages (apt), npm packages, the TypeScript build, the pause binary, and the `nspod` bin.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(runc crun conmon busybox-static gcc libc6-dev make iproute2 util-linux mount attr containernetworking-plugins iptables docker-registry apache2-utils openssl)

log() { printf '[bootstrap] %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing host packages: ${missing[*]} (run as root to install them)"
  else
    log "installing host packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# npm packages: reinstall only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Build when a source is newer than the last build.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ ! -f dist/bin/nspod.js ] || [ -n "$(find src package.json tsconfig.json scripts/bundle.mjs -newer "$stamp" -print -quit)" ]; then
  log "building"
  rm -rf dist
  npx tsc -p tsconfig.json
  node scripts/bundle.mjs dist
  touch "$stamp"
fi
make -s -C native

# The `nspod` command on PATH.
if [ "$(id -u)" -eq 0 ] && [ "$(readlink -f /usr/local/bin/nspod 2>/dev/null)" != "$PWD/dist/bin/nspod.js" ]; then
  ln -sf "$PWD/dist/bin/nspod.js" /usr/local/bin/nspod
  log "installed /usr/local/bin/nspod"
fi
