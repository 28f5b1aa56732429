"""DeepStrata's output for every segmentation and regression model of Deepness's test suite agrees with what
Deepness itself computes: its own map processors, run headless (tests/ds_testing/deepness_peer.py), with the
settings its dialog fills in from the same model's metadata (its own defaults where the metadata is silent).

Both run on Deepness's test raster at its native 2 cm pixels. Deepness reads tiles through QGIS's provider with
one square pixel size (the raster's pixels are 0.019999 x 0.019999 m, not quite square), so its rows drift by up
to 0.01 px from the raster's: values differ slightly at sharp edges. Deepness stitches tile centres and leaves the
border a cropped model cannot reach empty (0); DeepStrata blends tiles and mirrors the raster at its edge, so the
comparison of class maps is over the pixels Deepness classified.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ds_testing import deepness_peer
from ds_testing.deepness_models import CASES, MODELS, PEER

REASON = deepness_peer.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"Deepness cannot run here: {REASON}")


def _dialog_settings(path: Path, task: str) -> dict:
    """What Deepness's dialog fills in for this model (deepness_dockwidget._load_default_model_parameters),
    read with Deepness's own model wrapper, and its widget defaults where the metadata says nothing."""
    deepness_peer.use_peer()
    from deepness.processing.models.regressor import Regressor
    from deepness.processing.models.segmentor import Segmentor

    model = (Segmentor if task == "segmentation" else Regressor)(str(path))
    settings = {"tile_size": int(model.get_input_size_in_pixels()[0]),
                "overlap_percent": model.get_metadata_tiles_overlap() or 15,
                "batch_size": model.get_model_batch_size() or 1}
    if task == "segmentation":
        threshold, small = model.get_metadata_segmentation_threshold(), model.get_metadata_segmentation_small_segment()
        settings.update(threshold=0.5 if threshold is None else threshold, small_segment=9 if small is None else small)
    else:
        scaling = model.get_metadata_regression_output_scaling()
        settings.update(output_scaling=1.0 if scaling is None else scaling)
    return settings


@pytest.fixture(scope="module")
def fotomap(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fotomap")
    return Path(shutil.copy(PEER / "dummy_fotomap_small.tif", folder / "fotomap.tif"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_agrees_with_deepness(qgis_app, name: str, fotomap: Path, tmp_path: Path) -> None:
    from deepstrata.inference import RunOptions, load_model, run_model
    from deepstrata.inference.engine.deepness import CardOverrides

    task, _ = CASES[name]
    path = MODELS / name
    overrides = CardOverrides(task=task)
    model = load_model(path, overrides=overrides)
    out = tmp_path / "ours.tif"
    run_model(model, str(fotomap), str(out), RunOptions(card=overrides))  # at the raster's own pixels
    ours = gdal.Open(str(out)).ReadAsArray()
    ours = ours[None] if ours.ndim == 2 else ours
    native_cm = gdal.Open(str(fotomap)).GetGeoTransform()[1] * 100
    theirs = deepness_peer.run_deepness(str(path), str(fotomap), task=model.card.task, resolution_cm=native_cm,
                                        **_dialog_settings(path, model.card.task))
    assert theirs.arrays.shape == ours.shape
    assert np.allclose(theirs.geotransform[:1] + theirs.geotransform[3:4],
                       gdal.Open(str(out)).GetGeoTransform()[:1] + gdal.Open(str(out)).GetGeoTransform()[3:4])
    if model.card.task == "segmentation":
        classified = theirs.arrays != 0
        assert classified.mean() > 0.95
        same = (theirs.arrays == ours)[classified]
        assert same.mean() >= 0.998, f"{name}: {100 * same.mean():.3f} % of the pixels agree"
        assert set(np.unique(theirs.arrays[classified])) == set(np.unique(ours[classified]))
    else:
        difference = np.abs(theirs.arrays.astype(np.float64) - ours)
        assert (difference <= 1e-3).mean() >= 0.995, f"{name}: {100 * (difference <= 1e-3).mean():.3f} % agree"
        assert difference.max() < 0.05


def test_at_the_model_resolution_as_well(qgis_app, fotomap: Path, tmp_path: Path) -> None:
    """The regressor's metadata says 5.5 cm: both resample to it. Deepness samples the raster bilinearly at the
    model's pixels; DeepStrata averages the pixels it coarsens and brings the result back onto the raster's grid,
    so the values agree closely, not exactly."""
    from deepstrata.inference.workflows.resample import run_at_model_resolution

    path = MODELS / "dummy_regression_models/dummy_regression_model.onnx"
    done = run_at_model_resolution(str(path), str(fotomap), str(tmp_path / "ours.tif"))
    assert done.plan is not None and done.plan.pixel_size_m == pytest.approx(0.055)
    theirs = deepness_peer.run_deepness(str(path), str(fotomap), task="regression", resolution_cm=5.5,
                                        **_dialog_settings(path, "regression"))
    ours_ds = gdal.Open(str(tmp_path / "ours.tif"))
    ours, gt = ours_ds.ReadAsArray(), ours_ds.GetGeoTransform()
    their, tgt = theirs.arrays[0], theirs.geotransform
    rows, cols = np.mgrid[0:their.shape[0], 0:their.shape[1]]
    c = ((tgt[0] + (cols + 0.5) * tgt[1] - gt[0]) / gt[1]).astype(int)
    r = ((tgt[3] + (rows + 0.5) * tgt[5] - gt[3]) / gt[5]).astype(int)
    inside = (c >= 0) & (c < ours.shape[1]) & (r >= 0) & (r < ours.shape[0])
    a, b = their[inside], ours[r[inside], c[inside]]
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert np.median(np.abs(a - b)) < 0.01
