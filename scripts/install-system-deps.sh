#!/usr/bin/env bash
# System packages FFCV builds against. Installs them with apt-get when they are missing and we can;
# otherwise says what to install and carries on (pip will then fail with FFCV's own message).
set -euo pipefail
packages=(pkg-config libturbojpeg0-dev libopencv-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-system-deps: no apt-get here; install ${missing[*]} (or their equivalents) for FFCV" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
