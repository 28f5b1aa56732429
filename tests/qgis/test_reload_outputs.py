"""An output written over a file already open in QGIS: the open layer shows the new result afterwards (issue #16,
item 6), and one the run does not write is left alone."""
from __future__ import annotations

import numpy as np
from qgis.core import QgsProject, QgsRasterLayer

from qgis_support import RecordingFeedback
from ds_testing import models, rasters


def test_an_open_output_layer_shows_the_new_result(ds_provider, tmp_path):
    import processing

    raster = rasters.write_raster(tmp_path / "in.tif", np.full((1, 64, 80), 2.0, dtype=np.float32))
    tripled = models.identity_regressor(tmp_path / "identity.onnx", output={"scale": 3.0})
    out, other = tmp_path / "values.tif", tmp_path / "other.tif"
    processing.run("deepstrata:runmodel", {"INPUT": str(raster), "MODEL": str(tripled), "OUTPUT": str(out)})
    processing.run("deepstrata:runmodel", {"INPUT": str(raster), "MODEL": str(tripled), "OUTPUT": str(other)})
    project = QgsProject.instance()
    layer, untouched = QgsRasterLayer(str(out), "values"), QgsRasterLayer(str(other), "other")
    assert layer.isValid() and untouched.isValid()
    project.addMapLayers([layer, untouched])
    try:
        centre = layer.extent().center()
        before = layer.dataProvider().sample(centre, 1)[0]
        assert before == 6.0
        rasters.write_raster(raster, np.full((1, 64, 80), 5.0, dtype=np.float32))
        feedback = RecordingFeedback()
        processing.run("deepstrata:runmodel", {"INPUT": str(raster), "MODEL": str(tripled), "OUTPUT": str(out)},
                       feedback=feedback)
        assert layer.dataProvider().sample(centre, 1)[0] == 15.0  # without the reload: still 6
        assert untouched.dataProvider().sample(centre, 1)[0] == 6.0
        assert "Reloaded the open layer 'values'" in "\n".join(feedback.infos)
        assert "'other'" not in "\n".join(feedback.infos)
    finally:
        project.removeMapLayers([layer.id(), untouched.id()])
