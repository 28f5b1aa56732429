#!/usr/bin/env bash
# Installs the Debian packages DeepStrata needs, only those missing. Needs root (or sudo) when something is missing.
set -euo pipefail
pkgs=(qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-venv xvfb xauth grass-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
