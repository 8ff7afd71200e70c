#!/usr/bin/env bash
# Installs, from Debian's packages, whatever attnbench needs that this machine lacks (root, or sudo).
set -euo pipefail
packages=(cmake make g++ git pkg-config
          libhdf5-dev nlohmann-json3-dev libboost-program-options-dev catch2 libbenchmark-dev
          libopenmpi-dev openmpi-bin
          python3 python3-h5py python3-pandas)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
