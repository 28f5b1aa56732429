"""What the Processing log says, and when (#16 items 3 and 5): the resampling, scale, tile count and warnings about
an input outside the model's domain arrive before the progress moves, once; the progress text says what the run
does ("Tile 3 of 12", "Writing polygons", the Cloud-Optimized GeoTIFF at the end)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from osgeo import gdal
from qgis.core import QgsProcessingFeedback

from ds_testing import rasters

gdal.UseExceptions()

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "resources" / "models"
SAMPLES = REPO / "resources" / "samples"


class EventFeedback(QgsProcessingFeedback):
    """Every pushInfo, pushWarning, progress and progress text, in the order they came."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, object]] = []
        self.progressChanged.connect(lambda value: self.events.append(("progress", value)))

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.events.append(("info", info))
        super().pushInfo(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802
        self.events.append(("warning", warning))
        super().pushWarning(warning)

    def setProgressText(self, text: str) -> None:  # noqa: N802
        self.events.append(("text", text))
        super().setProgressText(text)

    def first_progress(self) -> int:
        """The index of the first event that moves the progress past 0."""
        return next(i for i, (kind, value) in enumerate(self.events) if kind == "progress" and value > 0)

    def lines(self, kind: str) -> list[str]:
        return [str(value) for k, value in self.events if k == kind]


def run(alg: str, parameters: dict, feedback: QgsProcessingFeedback) -> dict:
    import processing

    return processing.run(f"deepstrata:{alg}", parameters, feedback=feedback)


def _city_dsm(path: Path) -> Path:
    """A 2 m 'DSM': smooth hills with blocks of houses 6 to 15 m high every 12 cells."""
    rng = np.random.default_rng(4)
    z = 400.0 + 60.0 * rasters.smooth_random(1, 240, 240, seed=3, sigma=25.0)[0]
    for y in range(4, 230, 12):
        for x in range(4, 230, 12):
            h, w = rng.integers(4, 9, size=2)
            z[y:y + h, x:x + w] += rng.uniform(6.0, 15.0)
    return rasters.write_raster(path, z.astype(np.float32), geotransform=(400000.0, 2.0, 0, 3800000.0, 0, -2.0),
                                epsg=32611)


def test_run_model_says_the_resampling_and_the_tiles_before_the_progress_moves(ds_provider, dem, tmp_path):
    geographic = tmp_path / "dem_4326.tif"
    gdal.Warp(str(geographic), str(dem), dstSRS="EPSG:4326", resampleAlg="bilinear", dstNodata=-9999,
              outputType=gdal.GDT_Float32)
    feedback = EventFeedback()
    run("runmodel", {"INPUT": str(geographic), "MODEL": str(MODELS / "landforms_tpi.onnx"),
                     "OUTPUT": str(tmp_path / "out.tif")}, feedback)
    infos, start = feedback.lines("info"), feedback.first_progress()
    resampling = next(i for i, (k, v) in enumerate(feedback.events) if k == "info" and "resampling to 30 m" in v)
    tiles = next(i for i, (k, v) in enumerate(feedback.events) if k == "info" and " on 'dem_4326.tif': " in v)
    tiles_run = next(i for i, (k, v) in enumerate(feedback.events) if k == "progress" and v > 10.01)
    assert resampling < start and tiles < tiles_run, feedback.events[:tiles_run + 1]  # warping in is 0-10 %
    assert sum("resampling to 30 m" in line for line in infos) == 1  # not repeated when the run ends
    texts = feedback.lines("text")
    assert texts[:2] == ["Resampling 'dem_4326.tif' to 30 m", "Reading 'dem_4326.tif'"]
    assert any(t.startswith("Tile ") and " of " in t for t in texts)
    last = feedback.events.index(("text", texts[-1]))
    assert texts[-1] == "Writing 'out.tif' as a Cloud-Optimized GeoTIFF with overviews"
    assert ("progress", 100.0) in feedback.events[:last]  # said while the bar stands at 100 %
    assert not any("input.tif" in line for line in infos + feedback.lines("warning"))  # never the scratch copy


def test_a_dsm_is_warned_about_at_the_start_once(ds_provider, tmp_path):
    dsm = _city_dsm(tmp_path / "city_dsm.tif")
    feedback = EventFeedback()
    run("detectanomalies", {"INPUT": str(dsm), "OUTPUT": str(tmp_path / "score.tif"),
                            "OUTPUT_POLYGONS": str(tmp_path / "patches.gpkg")}, feedback)
    warnings, start = feedback.lines("warning"), feedback.first_progress()
    dsm_warnings = [w for w in warnings if "looks like a surface model (DSM)" in w]
    assert len(dsm_warnings) == 1 and dsm_warnings[0].startswith("'city_dsm.tif' looks like")
    assert feedback.events.index(("warning", dsm_warnings[0])) < start
    scale = next(i for i, (k, v) in enumerate(feedback.events) if k == "info" and str(v).startswith("Scale: "))
    assert scale < start
    texts = feedback.lines("text")
    assert "Writing polygons" in texts and texts.index("Writing polygons") > texts.index("Reading 'city_dsm.tif'")
    assert any(t.startswith("Writing the anomaly mask (score at least ") for t in texts)


def test_a_bare_earth_dem_gets_no_domain_warning(ds_provider, dem, tmp_path):
    feedback = EventFeedback()
    run("classifylandforms", {"INPUT": str(dem), "OUTPUT": str(tmp_path / "landforms.tif")}, feedback)
    assert feedback.lines("warning") == []
    texts = feedback.lines("text")
    assert texts[0] == f"Reading '{dem.name}'" and "Counting the pixels of each class" in texts


def test_the_bundled_samples_get_no_domain_warning_in_the_workflows(ds_provider, tmp_path):
    for name in ("bigtujunga_dem.tif", "LC80200392015216LGN00_B2-B7_sample.tif", "LC80200392015216LGN00_MTL.txt"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    dem, scene = tmp_path / "bigtujunga_dem.tif", tmp_path / "LC80200392015216LGN00_B2-B7_sample.tif"
    for alg, path in (("classifylandforms", dem), ("detectanomalies", dem), ("mapgeology", scene),
                      ("detectanomalies", scene)):
        feedback = EventFeedback()
        run(alg, {"INPUT": str(path), "OUTPUT": str(tmp_path / f"{alg}_{path.stem}.tif")}, feedback)
        assert feedback.lines("warning") == [], (alg, path.name)


def test_progress_texts_that_differ_only_in_numbers_are_shown_every_few_seconds(monkeypatch):
    from deepstrata.processing_provider import base

    clock = [100.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    feedback = EventFeedback()
    adapter = base.FeedbackAdapter(feedback)
    for text, at in (("Tile 1 of 120", 100.0), ("Tile 2 of 120", 101.0), ("Writing polygons", 101.5),
                     ("Tile 3 of 120", 102.0), ("Tile 9 of 120", 103.0), ("Tile 37 of 120", 108.5)):
        clock[0] = at
        adapter.doing(text)
    # QGIS copies each progress text into the log: a new kind at once, the same kind at most every 5 s
    assert feedback.lines("text") == ["Tile 1 of 120", "Writing polygons", "Tile 3 of 120", "Tile 37 of 120"]
