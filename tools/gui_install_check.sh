#!/bin/sh
# The installer in the real QGIS desktop, under Xvfb, in a fresh profile whose Python has no onnxruntime:
# click 'Install...' in the message bar, Install in the dialog (a real pip run from PyPI), then run Classify
# landforms. Usage: tools/gui_install_check.sh [out-dir] [images-dir]; prints result.txt, exits 1 on failure.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
images=${2:-$out}
mkdir -p "$out/profiles/default/QGIS" "$images"
printf '[PythonPlugins]\ndeepstrata=true\n[qgis]\nshowTips=false\n' > "$out/profiles/default/QGIS/QGIS3.ini"
mkdir -p "$out/plugins" && ln -sfn "$repo" "$out/plugins/deepstrata"
# a copy of the bundled DEM: the desktop writes statistics (.aux.xml) beside the rasters it opens
cp "$repo/resources/samples/bigtujunga_dem.tif" "$out/dem.tif"
# the system Python that QGIS embeds: no .venv, so no onnxruntime unless the installer brings it
env -u PYTHONPATH -u VIRTUAL_ENV -u QT_QPA_PLATFORM QGIS_PLUGINPATH="$out/plugins" DS_CHECK_OUT="$out" DS_CHECK_IMAGES="$images" \
    DS_DEM="$out/dem.tif" PATH=/usr/bin:/bin \
    timeout 900 xvfb-run -a -s "-screen 0 1280x800x24" qgis --profiles-path "$out" --nologo --noversioncheck \
    --code "$repo/tools/gui_install_check.py" >"$out/qgis.log" 2>&1 || true
cat "$out/result.txt" 2>/dev/null || { tail -30 "$out/qgis.log"; exit 1; }
grep -q "CHECK OK" "$out/result.txt"
