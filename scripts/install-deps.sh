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
  libcctz-dev
  clang libclang-rt-14-dev clang-format
  mosquitto mosquitto-clients python3-paho-mqtt python3-websocket
  redis-server redis-tools
  procps psmisc tzdata openssl
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
# The mosquitto package starts a system broker on 1883; herald's tests start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi
if command -v service >/dev/null 2>&1; then $SUDO service mosquitto stop >/dev/null 2>&1 || true; fi
pkill -x mosquitto 2>/dev/null || true
pkill -x redis-server 2>/dev/null || true
