"""deepstrata:runmodel through processing.run: pixel values, georeferencing, bands, extent, nodata, knobs."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProject,
    QgsRectangle,
    QgsReferencedRectangle,
)

from qgis_support import DEM_MODEL_NAME, DEM_NODATA, RGB_MEAN, RGB_STD, RecordingFeedback, expected_classes, read, zscore
from ds_testing import rasters

ALG = "deepstrata:runmodel"


dem_norm = zscore([1000.0], [250.0])
rgb_norm = zscore(RGB_MEAN, RGB_STD)


def run(parameters: dict, feedback=None) -> dict:
    import processing

    return processing.run(ALG, parameters, feedback=feedback)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float((a == b).mean())


def test_dem_segmentation_matches_whole_image_reference(ds_provider, dem_segmenter, dem, tmp_path):
    feedback = RecordingFeedback()
    out = tmp_path / "classes.tif"
    result = run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out)}, feedback)

    assert result["OUTPUT"] == str(out)
    assert result["PROVIDER"] == "CPUExecutionProvider"
    assert result["CONFIDENCE"] is None
    source, gt_in, wkt_in, _ = read(dem)
    classes, gt_out, wkt_out, nodata = read(out)
    assert classes.shape == (1, 240, 320)
    assert gt_out == pytest.approx(gt_in)
    assert QgsCoordinateReferenceSystem.fromWkt(wkt_out).authid() == "EPSG:32611"
    assert nodata == [0]
    assert set(np.unique(classes)) <= {1, 2, 3, 4}
    assert len(np.unique(classes)) >= 2  # a model that paints one class everywhere would hide bugs
    assert agreement(classes[0], expected_classes(dem_segmenter, source, dem_norm)) >= 0.999
    # what the user reads in the log
    log = "\n".join(feedback.infos)
    assert DEM_MODEL_NAME in log and "segmentation" in log and "CPUExecutionProvider" in log and "tiles" in log
    assert "1: flat, 2: slope, 3: ridge, 4: valley" in log
    assert feedback.progress and feedback.progress[-1] == pytest.approx(100.0)
    assert feedback.progress == sorted(feedback.progress)


def test_landsat_bands_in_model_order(ds_provider, rgb_segmenter, landsat, tmp_path):
    out = tmp_path / "rgb.tif"
    result = run({"INPUT": str(landsat), "MODEL": str(rgb_segmenter), "BANDS": [3, 2, 1], "OUTPUT": str(out)})

    assert result["PROVIDER"] == "CPUExecutionProvider"
    source, gt_in, wkt_in, _ = read(landsat)
    classes, gt_out, wkt_out, _ = read(out)
    assert gt_out == pytest.approx(gt_in)
    assert QgsCoordinateReferenceSystem.fromWkt(wkt_out).authid() == "EPSG:32616"
    reordered = expected_classes(rgb_segmenter, source[[2, 1, 0]], rgb_norm)
    as_stored = expected_classes(rgb_segmenter, source, rgb_norm)
    assert agreement(reordered, as_stored) < 0.95  # the band order matters for this model...
    assert agreement(classes[0], reordered) >= 0.999  # ...and the run used the requested one


def test_extent_in_raster_crs_writes_that_window(ds_provider, dem_segmenter, dem, tmp_path):
    _, gt, _, _ = read(dem)
    x0, y0, cols, rows = 40, 30, 160, 100  # a pixel-aligned window
    xmin, ymax = gt[0] + x0 * gt[1], gt[3] + y0 * gt[5]
    xmax, ymin = xmin + cols * gt[1], ymax + rows * gt[5]
    out = tmp_path / "window.tif"
    run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "EXTENT": f"{xmin},{xmax},{ymin},{ymax} [EPSG:32611]",
         "OUTPUT": str(out)})

    source, _, _, _ = read(dem)
    classes, gt_out, wkt_out, _ = read(out)
    assert classes.shape == (1, rows, cols)
    assert gt_out == pytest.approx((xmin, gt[1], 0.0, ymax, 0.0, gt[5]))
    assert QgsCoordinateReferenceSystem.fromWkt(wkt_out).authid() == "EPSG:32611"
    whole = expected_classes(dem_segmenter, source, dem_norm)
    assert agreement(classes[0], whole[y0:y0 + rows, x0:x0 + cols]) >= 0.999


def test_extent_in_another_crs_is_converted_to_the_raster_crs(ds_provider, dem_segmenter, dem, tmp_path):
    _, gt, _, _ = read(dem)
    window = QgsRectangle(gt[0] + 40 * gt[1], gt[3] + 130 * gt[5], gt[0] + 200 * gt[1], gt[3] + 30 * gt[5])
    utm, wgs84 = QgsCoordinateReferenceSystem("EPSG:32611"), QgsCoordinateReferenceSystem("EPSG:4326")
    geographic = QgsCoordinateTransform(utm, wgs84, QgsProject.instance()).transformBoundingBox(window)
    out = tmp_path / "window.tif"
    run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "EXTENT": QgsReferencedRectangle(geographic, wgs84),
         "OUTPUT": str(out)})

    classes, gt_out, wkt_out, _ = read(out)
    assert QgsCoordinateReferenceSystem.fromWkt(wkt_out).authid() == "EPSG:32611"
    rows, cols = classes.shape[1:]
    covered = QgsRectangle(gt_out[0], gt_out[3] + rows * gt_out[5], gt_out[0] + cols * gt_out[1], gt_out[3])
    # The geographic box, taken back to UTM, holds the window and grows by grid convergence only (< 5 pixels).
    assert covered.contains(window)
    assert cols - 160 < 5 and rows - 100 < 5
    assert 160 <= cols and 100 <= rows


def test_input_nodata_stays_nodata(ds_provider, dem_segmenter, dem, tmp_path):
    source, gt, wkt, _ = read(dem)
    holed = source[0].copy()
    holed[50:90, 100:180] = DEM_NODATA
    path = rasters.write_raster(tmp_path / "holed.tif", holed, geotransform=gt, epsg=32611, nodata=DEM_NODATA)
    out = tmp_path / "classes.tif"
    run({"INPUT": str(path), "MODEL": str(dem_segmenter), "OUTPUT": str(out)})

    classes, gt_out, _, nodata = read(out)
    assert nodata == [0]
    assert gt_out == pytest.approx(gt)
    hole = holed == DEM_NODATA
    assert (classes[0][hole] == 0).all()
    assert set(np.unique(classes[0][~hole])) <= {1, 2, 3, 4}


def test_raster_without_crs_runs_with_a_warning(ds_provider, dem_segmenter, dem, tmp_path):
    source, gt, _, _ = read(dem)
    path = rasters.write_raster(tmp_path / "nocrs.tif", source, geotransform=gt, epsg=None, nodata=DEM_NODATA)
    feedback = RecordingFeedback()
    out = tmp_path / "classes.tif"
    run({"INPUT": str(path), "MODEL": str(dem_segmenter), "OUTPUT": str(out)}, feedback)

    classes, gt_out, wkt_out, _ = read(out)
    assert wkt_out == ""
    assert gt_out == pytest.approx(gt)
    assert set(np.unique(classes)) <= {1, 2, 3, 4}
    assert any("no CRS" in w for w in feedback.warnings), feedback.warnings
    assert len([w for w in feedback.warnings if "no CRS" in w]) == 1  # reported once, not once per channel


def test_confidence_raster(ds_provider, dem_segmenter, dem, tmp_path):
    out, conf = tmp_path / "classes.tif", tmp_path / "confidence.tif"
    result = run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out), "CONFIDENCE": str(conf)})

    assert result["CONFIDENCE"] == str(conf)
    ds = gdal.Open(str(conf))
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert ds.GetGeoTransform() == pytest.approx(read(dem)[1])
    values = ds.ReadAsArray()
    # the winning softmax probability of 4 classes lies in [1/4, 1]
    assert values.min() >= 0.25 - 1e-6 and values.max() <= 1.0 + 1e-6


def test_identity_regressor_writes_the_input_values(ds_provider, dem_regressor, dem, tmp_path):
    out = tmp_path / "values.tif"
    run({"INPUT": str(dem), "MODEL": str(dem_regressor), "OUTPUT": str(out)})

    source, gt, _, _ = read(dem)
    values, gt_out, _, _ = read(out)
    assert gt_out == pytest.approx(gt)
    np.testing.assert_allclose(values[0], source[0].astype(np.float32), rtol=0, atol=1e-3)


def test_tuning_knobs_do_not_change_the_result(ds_provider, dem_segmenter, dem, tmp_path):
    default, tuned = tmp_path / "default.tif", tmp_path / "tuned.tif"
    run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(default)})
    feedback = RecordingFeedback()
    run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(tuned), "TILE_SIZE": 40,
         "OVERLAP": 8, "BATCH_SIZE": 3, "DEVICE": 1}, feedback)  # DEVICE 1 = cpu

    assert agreement(read(default)[0], read(tuned)[0]) >= 0.999
    assert any("device 'cpu'" in line for line in feedback.infos), feedback.infos


def test_device_options_match_the_engine():
    from deepstrata.inference import DEVICES as ENGINE_DEVICES
    from deepstrata.processing_provider.run_model import DEVICES

    assert DEVICES[0] == "auto"  # the default
    assert sorted(DEVICES) == sorted(ENGINE_DEVICES)


def layout(path) -> "tuple[str | None, int]":
    """(IMAGE_STRUCTURE LAYOUT, overviews of band 1) of a raster."""
    ds = gdal.Open(str(path))
    return ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT"), ds.GetRasterBand(1).GetOverviewCount()


def test_outputs_are_cogs_unless_a_plain_geotiff_is_asked_for(ds_provider, dem_segmenter, dem, tmp_path):
    for choice, expected in ((None, ("COG", 1)), (1, (None, 0))):
        out, conf = tmp_path / f"classes{choice}.tif", tmp_path / f"confidence{choice}.tif"
        parameters = {"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out), "CONFIDENCE": str(conf)}
        if choice is not None:
            parameters["OUTPUT_FORMAT"] = choice
        run(parameters)
        assert layout(out) == layout(conf) == expected
    for name in ("classes", "confidence"):
        assert np.array_equal(read(tmp_path / f"{name}None.tif")[0], read(tmp_path / f"{name}1.tif")[0])
    ds = gdal.Open(str(tmp_path / "classesNone.tif"))
    ds.GetGeoTransform()  # GDAL 3.6 GTiff loads the .aux.xml (category names) lazily
    assert ds.GetRasterBand(1).GetCategoryNames()[1:5] == ["flat", "slope", "ridge", "valley"]
    assert set(np.unique(ds.GetRasterBand(1).GetOverview(0).ReadAsArray())) <= {0, 1, 2, 3, 4}


def test_output_formats_match_the_engine():
    from deepstrata.inference.engine.geotiff import FORMATS
    from deepstrata.processing_provider.base import OUTPUT_FORMATS

    assert OUTPUT_FORMATS == FORMATS and OUTPUT_FORMATS[0] == "cog"  # the default


def test_cancelled_run_writes_nothing(ds_provider, dem_segmenter, dem, tmp_path):
    from qgis.core import QgsProcessingException

    feedback = RecordingFeedback()
    feedback.cancel()
    out = tmp_path / "classes.tif"
    with pytest.raises(QgsProcessingException, match="cancel"):
        run({"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out)}, feedback)
    assert list(tmp_path.iterdir()) == []
