"""Outputs as Cloud-Optimized GeoTIFFs with overviews (the default) or plain tiled GeoTIFFs (output_format='gtiff'):
the layout, the overviews' resampling (classes never blended, scores averaged), the same pixels and metadata in
both, one conversion per output at the commit, and a cancel or a failure there leaving nothing behind."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import CancelledError, OutputError, RunOptions, run_model
from deepstrata.inference.cli import main as cli_main
from deepstrata.inference.engine import geotiff, writer as writer_module
from deepstrata.inference.engine.card import ClassInfo
from deepstrata.inference.engine.deepness import CardOverrides
from deepstrata.inference.engine.staging import Staging
from deepstrata.inference.engine.writer import FLOAT_NODATA, RasterTarget, RasterWriter
from deepstrata.inference.workflows.resample import run_at_model_resolution
from ds_testing import faults, models, rasters

gdal.UseExceptions()
CLASSES = [{"value": 1, "name": "low", "color": "#0000ff"}, {"value": 50, "name": "mid", "color": "#00ff00"},
           {"value": 200, "name": "high", "color": "#ff0000"}]  # averaging any two gives a value that is none
INPUT_NODATA = -9999.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One class model over a 600 x 520 px raster with a nodata patch, written as COGs and as plain GeoTIFFs
    (class raster and confidence each)."""
    root = tmp_path_factory.mktemp("cog")
    z = (rasters.smooth_random(1, 520, 600, seed=2) * 1000 + 1000).astype(np.float32)
    z[:, 100:141, 200:261] = INPUT_NODATA
    raster = rasters.write_raster(root / "in.tif", z, nodata=INPUT_NODATA)
    model = models.conv_segmenter(root / "seg.onnx", bands=1, classes=3, layers=1, output={"classes": CLASSES},
                                  normalization={"method": "zscore", "mean": [1000.0], "std": [250.0]})
    paths = {}
    for fmt in ("cog", "gtiff"):
        out, conf = root / fmt / "classes.tif", root / fmt / "confidence.tif"
        out.parent.mkdir()
        run_model(model, str(raster), str(out), RunOptions(confidence_path=str(conf), output_format=fmt))
        paths[fmt], paths[f"{fmt}_conf"] = out, conf
    return paths


def _open(path: Path) -> gdal.Dataset:
    return gdal.Open(str(path))


def _info(path: Path) -> dict[str, Any]:
    """gdal.Info as JSON without what names the file, its layout and its overviews (for comparisons)."""
    info = gdal.Info(str(path), format="json")
    for key in ("description", "files"):
        info.pop(key, None)
    info["metadata"].pop("IMAGE_STRUCTURE", None)
    for band in info["bands"]:
        band.pop("overviews", None)
    return info


def _overview(path: Path, level: int = 0, band: int = 1) -> np.ndarray:
    ds = _open(path)  # held: a band of a closed dataset crashes
    return ds.GetRasterBand(band).GetOverview(level).ReadAsArray()


@pytest.mark.parametrize("name", ["", "_conf"], ids=["classes", "confidence"])
def test_outputs_are_cogs_with_the_plain_geotiffs_pixels_and_metadata(runs: dict[str, Path], name: str) -> None:
    cog, plain = runs["cog" + name], runs["gtiff" + name]
    info = gdal.Info(str(cog), format="json")
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert [(o["size"]) for o in info["bands"][0]["overviews"]] == [[300, 260], [150, 130]]
    assert info["bands"][0]["block"] == [256, 256]
    plain_info = gdal.Info(str(plain), format="json")
    assert "LAYOUT" not in plain_info["metadata"]["IMAGE_STRUCTURE"] and "overviews" not in plain_info["bands"][0]
    structure = {k: v for k, v in info["metadata"]["IMAGE_STRUCTURE"].items() if k != "LAYOUT"}
    assert structure == plain_info["metadata"]["IMAGE_STRUCTURE"]  # same compression, predictor, interleave
    assert np.array_equal(_open(cog).ReadAsArray(), _open(plain).ReadAsArray())  # full resolution: identical
    # georeferencing, nodata, band names, colour table, category names, CLASS_n, statistics, provenance
    assert _info(cog) == _info(plain)
    assert cog.with_suffix(".qml").read_bytes() == plain.with_suffix(".qml").read_bytes()
    assert sorted(p.name for p in cog.parent.iterdir()) == sorted(p.name for p in plain.parent.iterdir())


def test_the_kept_metadata_is_what_the_writer_wrote(runs: dict[str, Path]) -> None:
    ds = _open(runs["cog"])
    band = ds.GetRasterBand(1)
    assert band.GetNoDataValue() == 0 and band.GetDescription() == "class"
    assert band.GetCategoryNames()[1] == "low" and band.GetCategoryNames()[200] == "high"
    assert band.GetMetadataItem("CLASS_50") == "mid" and ds.GetMetadataItem("DEEPSTRATA_TASK") == "segmentation"
    assert band.GetColorTable().GetColorEntry(200)[:3] == (255, 0, 0)
    assert band.GetColorInterpretation() == gdal.GCI_PaletteIndex
    assert json.loads(ds.GetMetadataItem("DEEPSTRATA_PARAMETERS"))["input"].endswith("in.tif")
    assert ds.GetMetadataItem("DEEPSTRATA_MODEL_SHA256") and ds.GetSpatialRef().GetAuthorityCode(None) == "32633"
    assert ds.GetGeoTransform() == rasters.GEOTRANSFORM
    conf_ds = _open(runs["cog_conf"])
    conf = conf_ds.GetRasterBand(1)
    assert conf.GetNoDataValue() == pytest.approx(FLOAT_NODATA)
    assert conf.GetMetadataItem("STATISTICS_MEAN") is not None  # the writer's statistics, not recomputed


def test_class_overviews_hold_one_of_the_pixels_they_cover(runs: dict[str, Path]) -> None:
    full = _open(runs["cog"]).ReadAsArray()
    assert set(np.unique(full).tolist()) == {0, 1, 50, 200}
    level1 = _overview(runs["cog"])
    blocks = full.reshape(260, 2, 300, 2).transpose(0, 2, 1, 3).reshape(260, 300, 4)
    assert (blocks == level1[:, :, None]).any(axis=2).all()  # nearest: a value of its block, never a blend
    for level in range(2):
        assert set(np.unique(_overview(runs["cog"], level)).tolist()) <= {0, 1, 50, 200}
    mixed = (blocks != blocks[:, :, :1]).any(axis=2) & (blocks != 0).all(axis=2)
    assert mixed.sum() > 100  # class edges were there to blend


def test_score_overviews_are_the_mean_of_the_valid_pixels_they_cover(runs: dict[str, Path]) -> None:
    full = _open(runs["cog_conf"]).ReadAsArray().astype(np.float64)
    blocks = full.reshape(260, 2, 300, 2).transpose(0, 2, 1, 3).reshape(260, 300, 4)
    valid = blocks != np.float32(FLOAT_NODATA)
    level1 = _overview(runs["cog_conf"])
    whole = valid.all(axis=2)
    assert whole.mean() > 0.9 and (~valid).all(axis=2).sum() > 100  # the nodata patch
    np.testing.assert_allclose(level1[whole], blocks[whole].mean(axis=1), rtol=1e-6)
    assert (level1[(~valid).all(axis=2)] == np.float32(FLOAT_NODATA)).all()
    part = valid.any(axis=2) & ~whole  # the patch's edge: the mean of the valid ones, nodata left out
    sums = np.where(valid, blocks, 0).sum(axis=2)
    np.testing.assert_allclose(level1[part], sums[part] / valid.sum(axis=2)[part], rtol=1e-6)


def test_the_cli_writes_cogs_by_default_and_plain_geotiffs_on_request(tmp_path: Path, capsys) -> None:
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=20)  # 10 m pixels: resampled and back
    raster = rasters.write_raster(tmp_path / "in.tif", rasters.smooth_random(1, 300, 280, seed=4).astype(np.float32))
    for fmt, layout in (([], "COG"), (["--output-format", "gtiff"], None)):
        out = tmp_path / f"out{len(fmt)}.tif"
        assert cli_main(["run", "--model", str(model), "--input", str(raster), "--output", str(out), "--quiet",
                         *fmt]) == 0
        ds = _open(out)
        assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == layout
        assert ds.GetRasterBand(1).GetOverviewCount() == (1 if layout else 0)
    assert np.array_equal(_open(tmp_path / "out0.tif").ReadAsArray(), _open(tmp_path / "out2.tif").ReadAsArray())
    assert "resampling to 20 m" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses it
        cli_main(["run", "--model", str(model), "--input", str(raster), "--output", str(tmp_path / "x.tif"),
                  "--output-format", "png"])


def _count_conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    original = RasterWriter.make_cog

    def counted(self: RasterWriter) -> None:
        made.append(Path(self.target.path).name)
        original(self)

    monkeypatch.setattr(RasterWriter, "make_cog", counted)
    return made


def test_one_conversion_per_output_at_the_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A median filter's second pass and the scratch run at the model's pixel size are not converted; only the
    final outputs are, once each."""
    made = _count_conversions(monkeypatch)
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=3, layers=1, pixel_size_m=20,
                                  normalization={"method": "zscore", "mean": [0.5], "std": [0.2]})
    raster = rasters.write_raster(tmp_path / "in.tif", rasters.smooth_random(1, 300, 280, seed=5).astype(np.float32))
    options = RunOptions(confidence_path=str(tmp_path / "conf.tif"), card=CardOverrides(median_filter=3))
    done = run_at_model_resolution(model, str(raster), str(tmp_path / "out.tif"), options)
    assert done.plan is not None
    assert sorted(made) == ["conf.tif", "out.tif"]
    for name in ("out.tif", "conf.tif"):
        assert _open(tmp_path / name).GetMetadata("IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.qml", "conf.tif", "in.tif", "out.qml", "out.tif",
                                                           "out.tif.aux.xml", "seg.onnx"]


def _two_outputs(folder: Path) -> tuple[Path, Path, str, RunOptions]:
    """A class model over a 700 x 650 px raster, its two outputs (o.tif, c.tif) where earlier ones are."""
    model = models.conv_segmenter(folder / "seg.onnx", bands=1, classes=3, layers=1,
                                  normalization={"method": "zscore", "mean": [0.5], "std": [0.2]})
    raster = rasters.write_raster(folder / "in.tif", rasters.smooth_random(1, 700, 650, seed=6).astype(np.float32))
    out = folder / "out" / "o.tif"
    faults.earlier_outputs(out)
    faults.earlier_outputs(out.with_name("c.tif"))
    return model, out, str(raster), RunOptions(confidence_path=str(out.with_name("c.tif")))


def test_a_cancel_during_the_conversion_leaves_the_earlier_outputs(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model, out, raster, options = _two_outputs(tmp_path)
    polls = {"converting": False, "count": 0}
    original = RasterWriter.make_cog

    def converting(self: RasterWriter) -> None:
        polls["converting"] = True
        original(self)

    def is_cancelled() -> bool:
        if polls["converting"]:
            polls["count"] += 1
        return polls["count"] > 4  # a few blocks into the first COG

    monkeypatch.setattr(RasterWriter, "make_cog", converting)
    watch = faults.Snapshot(out.parent)
    with pytest.raises(CancelledError):
        run_model(model, raster, str(out), options, is_cancelled=is_cancelled)
    assert polls["count"] > 4
    watch.check()  # earlier files byte-identical, nothing new, no temporary (nor GDAL's .ovr.tmp)


def test_a_failed_conversion_leaves_the_earlier_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second output's conversion fails after the first was made: neither reaches its target, and what GDAL
    left half-written is removed."""
    model, out, raster, options = _two_outputs(tmp_path)
    real = gdal.Translate
    calls = []

    def failing(destination: str, source: Any, **kwargs: Any) -> Any:
        calls.append(destination)
        if len(calls) == 1:
            return real(destination, source, **kwargs)
        for leftover in (destination, destination + ".ovr.tmp"):
            Path(leftover).write_bytes(b"half written")
        raise RuntimeError(f"{destination}: Write error (simulated)")

    monkeypatch.setattr(writer_module.gdal, "Translate", failing)
    watch = faults.Snapshot(out.parent)
    with pytest.raises(OutputError, match=r"Could not write '.*[oc]\.tif' \(.*Write error"):
        run_model(model, raster, str(out), options)
    assert len(calls) == 2
    watch.check()


def test_a_two_band_class_raster_keeps_its_second_band_visible(tmp_path: Path) -> None:
    """GTiff's copy would take band 2 of a paletted raster for alpha (hiding band 1 where band 2 is 0)."""
    classes = [ClassInfo(1, "a", "#ff0000"), ClassInfo(2, "b", "#00ff00")]
    values = np.random.default_rng(0).integers(0, 3, (2, 300, 400)).astype(np.uint8)
    for fmt in ("cog", "gtiff"):
        target = RasterTarget(str(tmp_path / f"{fmt}.tif"), np.dtype(np.uint8), 0, ["first", "second"],
                              [classes, classes])
        with Staging(output_format=fmt) as stage, RasterWriter(stage, target, 400, 300, rasters.GEOTRANSFORM, "") as w:
            w.write(0, 0, values)
    ds = _open(tmp_path / "cog.tif")
    assert [ds.GetRasterBand(i).GetColorInterpretation() for i in (1, 2)] == [gdal.GCI_PaletteIndex, gdal.GCI_GrayIndex]
    assert ds.GetRasterBand(1).GetOverviewCount() == 1 and ds.GetRasterBand(2).GetCategoryNames()[2] == "b"
    assert np.array_equal(ds.ReadAsArray(), values)
    plain = _open(tmp_path / "gtiff.tif")
    assert plain.GetRasterBand(2).GetColorInterpretation() == gdal.GCI_Undefined


def test_output_formats_and_the_overview_rule() -> None:
    assert Staging(output_format="COG").output_format == "cog"
    with pytest.raises(OutputError, match="'cog'.*'gtiff'"):
        Staging(output_format="png")
    assert geotiff.overview_resampling(np.dtype(np.uint8)) == "NEAREST"
    assert geotiff.overview_resampling(np.dtype(np.uint16)) == "NEAREST"
    assert geotiff.overview_resampling(np.dtype(np.float32)) == "AVERAGE"
    assert geotiff.overview_resampling(np.dtype(np.float32), categorical=True) == "NEAREST"
    assert geotiff.gtiff_options(np.dtype(np.float32))[-3:] == ["COMPRESS=DEFLATE", "ZLEVEL=1", "PREDICTOR=3"]


def test_the_block_cache_is_held_small_while_converting_and_restored() -> None:
    before = gdal.GetCacheMax()
    with geotiff.bounded_cache(32 << 20):
        assert gdal.GetCacheMax() == 32 << 20
        with geotiff.bounded_cache(64 << 20):  # nested: the smaller limit stays
            assert gdal.GetCacheMax() == 32 << 20
        assert gdal.GetCacheMax() == 32 << 20
    assert gdal.GetCacheMax() == before
