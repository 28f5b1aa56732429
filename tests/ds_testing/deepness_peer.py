"""Run the peer plugin Deepness's own map processors headless, so tests can compare DeepStrata with it.

Deepness (Apache-2.0) is not copied here: its sources are imported at run time from
``<repo>/../shared/peers/deepness/src``. `run_deepness` drives `MapProcessorSegmentation` /
`MapProcessorRegression` the way Deepness's own tests do (entire layer, default band mapping, overlap in
percent) and returns the arrays of ``get_result_img()`` with the geotransform of their grid. Nothing is
written into the repository or the peer folder, and no layer is added to the QgsProject.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PEER = REPO.parent / "shared" / "peers" / "deepness"
PEER_SRC = PEER / "src"
_APP: Any = None  # a QgsApplication this module created (kept alive), when none existed


def unavailable_reason() -> str | None:
    """None when Deepness's map processors can run here; otherwise why not, for ``pytest.skip``."""
    if not (PEER_SRC / "deepness" / "processing" / "map_processor").is_dir():
        return f"the peer Deepness is not at {PEER}"
    for module, why in (("qgis.core", "qgis is not importable"),
                        ("cv2", "cv2 (opencv-python-headless) is not importable"),
                        ("onnxruntime", "onnxruntime is not importable")):
        try:
            importlib.import_module(module)
        except Exception as exc:  # ImportError, or a broken shared library
            return f"{why}: {exc}"
    if int(np.__version__.split(".")[0]) >= 2:
        return f"Deepness needs numpy<2, found {np.__version__}"
    return None


@dataclass
class DeepnessResult:
    """What Deepness computed, on the grid it computed it on."""

    arrays: np.ndarray  # (outputs, rows, cols) exactly as the map processor's get_result_img()
    geotransform: tuple[float, ...]  # GDAL-style: Deepness's base extent corner and processing resolution
    crs_wkt: str


def _ensure_qgis() -> None:
    global _APP
    from qgis.core import QgsApplication
    if QgsApplication.instance() is None:  # script use; under pytest the qgis_app fixture made one
        _APP = QgsApplication([], False)
        _APP.initQgis()


def use_peer() -> None:
    """Make Deepness's package importable (its sources stay in the peer folder)."""
    _ensure_qgis()
    if str(PEER_SRC) not in sys.path:
        sys.path.insert(0, str(PEER_SRC))


def _import_deepness() -> Any:
    use_peer()
    from deepness.processing.map_processor import map_processor_regression, map_processor_segmentation

    class _FloatRegression(map_processor_regression.MapProcessorRegression):  # type: ignore[misc]
        """Deepness's regression processor, except for its uint8 result allocation and its GeoTIFF layers."""

        def _get_array_or_mmapped_array(self, final_shape_px: tuple[int, ...]) -> np.ndarray:
            return np.zeros(final_shape_px, np.float32)

        def _create_rlayers_from_images_for_base_extent(self, result_imgs: Any) -> Any:
            return lambda: None  # upstream writes GeoTIFFs to TMP_DIR_PATH for its GUI delegate

    return map_processor_segmentation.MapProcessorSegmentation, _FloatRegression


def run_deepness(model_path: str, raster_path: str, *, task: str, resolution_cm: float, tile_size: int,
                 overlap_percent: float, batch_size: int = 1, threshold: float = 0.5, small_segment: int = 0,
                 output_scaling: float = 1.0, band_count: int | None = None) -> DeepnessResult:
    """Run Deepness's map processor for ``task`` ("segmentation" | "regression") over the whole raster.

    ``threshold`` is Deepness's ``pixel_classification__probability_threshold``, ``small_segment`` its
    ``postprocessing_dilate_erode_size`` (a median blur of odd size ``small_segment // 2 * 2 + 1``), and
    ``band_count`` the number of leading raster bands mapped to the model inputs (default: all bands; the
    model then keeps only its first C). Segmentation arrays are uint8 class values 1..N (0 = no data).

    Quirk patched here: Deepness's ``MapProcessor._get_array_or_mmapped_array`` allocates ``np.uint8``, so
    its regression values are truncated to integers (and wrapped); for regression this module allocates
    float32 instead, so the values compared are the ones Deepness's model wrapper actually computed.
    """
    if task not in ("segmentation", "regression"):
        raise ValueError(f"task must be 'segmentation' or 'regression', not {task!r}")
    _ensure_qgis()
    from osgeo import gdal
    from qgis.core import QgsRasterLayer
    segmentation_cls, regression_cls = _import_deepness()
    from deepness.common.channels_mapping import ChannelsMapping, ImageChannelStandaloneBand
    from deepness.common.processing_overlap import ProcessingOverlap, ProcessingOverlapOptions
    from deepness.common.processing_parameters.map_processing_parameters import ProcessedAreaType
    from deepness.common.processing_parameters.regression_parameters import RegressionParameters
    from deepness.common.processing_parameters.segmentation_parameters import SegmentationParameters
    from deepness.processing.map_processor.map_processing_result import MapProcessingResultSuccess
    from deepness.processing.models.regressor import Regressor
    from deepness.processing.models.segmentor import Segmentor

    pam = gdal.GetConfigOption("GDAL_PAM_ENABLED")
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")  # no .aux.xml beside the input raster
    try:
        rlayer = QgsRasterLayer(str(raster_path), "deepness_peer_input")  # never added to the project
        if not rlayer.isValid():
            raise ValueError(f"QGIS cannot open {raster_path}")
        mapping = ChannelsMapping()  # as Deepness's tests' create_default_input_channels_mapping_for_rgba_bands
        mapping.set_image_channels([ImageChannelStandaloneBand(band_number=b, name=rlayer.bandName(b))
                                    for b in range(1, (band_count or rlayer.bandCount()) + 1)])
        mapping.set_number_of_model_inputs_same_as_image_channels()
        common = dict(resolution_cm_per_px=resolution_cm, tile_size_px=tile_size, batch_size=batch_size,
                      local_cache=False, processed_area_type=ProcessedAreaType.ENTIRE_LAYER, mask_layer_id=None,
                      input_layer_id=rlayer.id(), input_channels_mapping=mapping,
                      processing_overlap=ProcessingOverlap(ProcessingOverlapOptions.OVERLAP_IN_PERCENT,
                                                           percentage=overlap_percent))
        if task == "segmentation":
            params: Any = SegmentationParameters(**common, model=Segmentor(str(model_path)),
                                                 postprocessing_dilate_erode_size=small_segment,
                                                 pixel_classification__probability_threshold=threshold)
            processor = segmentation_cls(rlayer=rlayer, vlayer_mask=None, map_canvas=MagicMock(), params=params)
        else:
            params = RegressionParameters(**common, model=Regressor(str(model_path)), output_scaling=output_scaling)
            processor = regression_cls(rlayer=rlayer, vlayer_mask=None, map_canvas=MagicMock(), params=params)
        with contextlib.redirect_stdout(io.StringIO()):  # Deepness prints a line per tile
            processor.run()  # synchronously; finished() and its GUI delegate are never called
        outcome = processor._processing_result
        if not isinstance(outcome, MapProcessingResultSuccess):
            raise RuntimeError(f"Deepness failed: {outcome.message}") from getattr(outcome, "exception", None)
        arrays = np.asarray(processor.get_result_img())
    finally:
        gdal.SetConfigOption("GDAL_PAM_ENABLED", pam)

    extent, step = processor.base_extent, float(processor.rlayer_units_per_pixel)
    expected = (round(extent.height() / step), round(extent.width() / step))
    if arrays.ndim != 3 or arrays.shape[1:] != expected:
        raise AssertionError(f"Deepness's result {arrays.shape} does not match its base extent grid {expected}")
    return DeepnessResult(arrays=arrays,
                          geotransform=(extent.xMinimum(), step, 0.0, extent.yMaximum(), 0.0, -step),
                          crs_wkt=rlayer.crs().toWkt())
