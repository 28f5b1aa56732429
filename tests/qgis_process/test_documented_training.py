"""docs/training.md's walkthrough, run as written: the quick-look `segment` on the Hamersley map (real data from
../shared), then the model in QGIS through `qgis_process`, as the page's "Running your model in QGIS" says."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from osgeo import gdal

REPO = Path(__file__).resolve().parents[2]
HAMERSLEY = REPO.parent / "shared" / "data" / "geology" / "hamersley_wa"
MARKER = "<!-- tested: tests/qgis_process/test_documented_training.py"
pytestmark = [pytest.mark.skipif(not HAMERSLEY.is_dir(), reason=f"the Hamersley data is not at {HAMERSLEY}"),
              pytest.mark.skipif(not Path("/usr/bin/qgis_process.bin").exists(), reason="qgis_process is missing")]


def documented_block() -> str:
    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    after = text.split(MARKER, 1)[1]
    return after.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_walkthrough_runs_as_documented(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    block = documented_block()
    assert "T segment" in block and "hamersley_quick.onnx" in block
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO / ".build" / "plugins"),
           "QT_QPA_PLATFORM": "offscreen"}
    script = f"set -euo pipefail\nT() {{ '{REPO / '.venv' / 'bin' / 'python'}' -m training \"$@\"; }}\n{block}"
    done = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    model = tmp_path / "models" / "hamersley_quick.onnx"
    report = json.loads((tmp_path / "models" / "hamersley_quick.report" / "report.json").read_text())
    assert {r["method"] for r in report["rows"]} == {"network", "majority", "random_forest"}
    assert "random forest" in (tmp_path / "models" / "hamersley_quick.report" / "README.md").read_text()
    assert not list(HAMERSLEY.glob("*.aux.xml"))  # the shared data stays untouched

    dem = Path(shutil.copy(HAMERSLEY / "dtm_rp.tif", tmp_path / "dtm_rp.tif"))  # QGIS may add statistics beside it
    out = tmp_path / "rocks.tif"
    qgis = subprocess.run([str(REPO / "tools" / "qgis_process"), "run", "deepstrata:runmodel", "--",
                           f"INPUT={dem}", f"MODEL={model}", f"OUTPUT={out}"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert qgis.returncode == 0, qgis.stdout + qgis.stderr
    ds = gdal.Open(str(out))
    ds.GetGeoTransform()  # category names come from the .aux.xml, read lazily
    names = [n for n in ds.GetRasterBand(1).GetCategoryNames() if n]
    assert names == [c["name"] for c in report["classes"]]
    assert "sedimentary siliciclastic" in names
