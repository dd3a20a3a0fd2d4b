#!/usr/bin/env bash
# Installs the Debian packages herald needs to build, test and benchmark.
# Idempotent: when every package is present it only runs dpkg-query and exits.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git curl
  libboost-dev libboost-system-dev libboost-program-options-dev
  libssl-dev zlib1g-dev
  librocksdb-dev
  libsimdjson-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev
  libcli11-dev
  libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  librdkafka-dev
  libcctz-dev libs2-dev
  clang libclang-rt-14-dev clang-format
  mosquitto mosquitto-clients python3-paho-mqtt python3-websocket
  redis-server redis-tools
  procps psmisc tzdata openssl
  chromium fonts-dejavu-core
)

# Test-only tools from the npm registry, pinned, under .tools/ of the checkout.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDOCLY_VERSION=2.77.0
install_npm_tools() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm not found: the OpenAPI lint test (openapi_lint) will fail" >&2
    return 0
  fi
  local want="$ROOT/.tools/node_modules/@redocly/cli/package.json"
  if [ -f "$want" ] && grep -q "\"version\": \"$REDOCLY_VERSION\"" "$want"; then return 0; fi
  echo "install-deps: installing @redocly/cli@$REDOCLY_VERSION into .tools (OpenAPI lint, tests only)"
  mkdir -p "$ROOT/.tools"
  npm install --prefix "$ROOT/.tools" --no-audit --no-fund --loglevel=error "@redocly/cli@$REDOCLY_VERSION" </dev/null \
    || echo "install-deps: npm install failed: the OpenAPI lint test (openapi_lint) will fail" >&2
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  install_npm_tools
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
# Installing mosquitto or redis-server may start a system service of the package (on
# 1883 and 6379). Stop only a service this run just installed: a broker or Redis that
# was on the machine before is the user's, and herald's tests and benchmarks start
# their own on free ports anyway.
for svc in mosquitto redis-server; do
  just_installed=0
  for p in "${missing[@]}"; do [ "$p" = "$svc" ] && just_installed=1; done
  [ "$just_installed" = 1 ] || continue
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
install_npm_tools
