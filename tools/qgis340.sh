#!/usr/bin/env bash
# The test suite on QGIS 3.40 LTR: a Debian 13 (trixie) chroot under .build/qgis340 (Python 3.13, GDAL 3.10,
# numpy 2.2, Qt 5.15), built once and reused until the recipe below changes. Each run copies this checkout into
# the chroot at the same absolute path (so .build/plugins/deepstrata resolves there too), mounts ../shared
# read-only beside it, and runs `make test` there (its own .venv: Debian's numpy and python3-torch, the rest from
# PyPI). Arguments go to pytest instead of the whole suite: tools/qgis340.sh tests/qgis tests/core
# Needs root (debootstrap, mount, chroot), Debian's mirrors and PyPI. See docs/architecture.md (Testing).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SHARED=$(cd .. && pwd)/shared
CACHE=$SRC/.build/qgis340
R=$CACHE/root
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The recipe: change anything here and the chroot is rebuilt from scratch on the next run.
SUITE=trixie
PKGS=(qgis python3-qgis qgis-providers python3-gdal gdal-bin grass-core python3-venv python3-pip python3-torch
      xvfb xauth git make ca-certificates)
RECIPE="1 $SUITE $MIRROR ${PKGS[*]}"
STAMP=$CACHE/recipe.stamp

[ "$(id -u)" -eq 0 ] || { echo "tools/qgis340.sh needs root (debootstrap, mount, chroot)" >&2; exit 1; }

# Every mount under the chroot, deepest first.
mounts() { awk -v r="$R" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r; }
cleanup() {
  local m
  for m in $(mounts); do umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ -n "$(mounts)" ]; then echo "tools/qgis340.sh: still mounted under $R:" >&2; mounts >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cleanup  # a run killed hard (SIGKILL) may have left mounts behind

in_root() {
  chroot "$R" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

mount_system() {
  mount -t proc proc "$R/proc"
  mount --rbind /sys "$R/sys" && mount --make-rslave "$R/sys"
  mount --rbind /dev "$R/dev" && mount --make-rslave "$R/dev"
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  # pip inside must trust the certificate authorities the host trusts (a proxy's, where there is one)
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$R/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
    [ -x "$R/usr/sbin/update-ca-certificates" ] && in_root update-ca-certificates >/dev/null 2>&1 || true
  fi
}

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$RECIPE" ]; then
  echo "== building the QGIS 3.40 chroot ($SUITE) in $R (once; about 3 minutes)"
  command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
  [ -z "$(mounts)" ] || { echo "refusing to delete $R while something is mounted there" >&2; exit 1; }
  rm -rf --one-file-system "$R" "$STAMP"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  mount_system
  in_root bash -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${PKGS[*]} && apt-get clean" \
    >"$CACHE/apt.log" 2>&1 || { tail -30 "$CACHE/apt.log" >&2; exit 1; }
  echo "$RECIPE" >"$STAMP"
else
  mount_system
fi

# This checkout, at the same absolute path inside; its .venv and .build there are the chroot's own (kept).
mkdir -p "$R$SRC" "$R$SHARED"
find "$R$SRC" -mindepth 1 -maxdepth 1 ! -name .venv ! -name .build -exec rm -rf --one-file-system {} +
tar -C "$SRC" --exclude=./.venv --exclude=./.build --exclude=./dist --exclude=./out --exclude=.mypy_cache \
  --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis -cf - . | tar -C "$R$SRC" -xf -
# The chroot's .venv is made afresh whenever a requirements file changes (by content: make's mtimes can miss an
# edit copied within the second of an install, and pip never removes a package a file no longer names).
sums=$(cat requirements.txt requirements-dev.txt training/requirements.txt training/requirements-spectra.txt | sha256sum)
if [ "$(cat "$R$SRC/.venv/requirements.sha256" 2>/dev/null)" != "$sums" ]; then
  rm -rf --one-file-system "$R$SRC/.venv"
fi
if [ -d "$SHARED" ]; then
  mount --bind "$SHARED" "$R$SHARED" && mount -o remount,bind,ro "$R$SHARED"
fi

echo "== $(in_root qgis_process --version 2>/dev/null | grep -m1 -o 'QGIS [0-9.]*' || echo '3.40?') in the chroot: make test${*:+ PYTEST_ARGS=$*}"
in_root make -C "$SRC" setup training
echo "$sums" >"$R$SRC/.venv/requirements.sha256"
in_root make -C "$SRC" test ${*:+PYTEST_ARGS="$*"}
