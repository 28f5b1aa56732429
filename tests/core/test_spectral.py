"""The index layers (ferric, ferrous, hydroxyl, NDVI, MNDWI) and the spectral units of Map geology, without QGIS:
the index maths against hand-computed values on tiny rasters of each sensor and product, k-means recovering
planted surfaces (and their number), the windowed result equal to the whole-image one, nodata honoured."""
from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference.engine.card import BandInfo, InputSpec, ModelCard, OutputSpec
from deepstrata.inference.engine.errors import InputError
from deepstrata.inference.workflows import indices, kmeans, spectral
from ds_testing import rasters

gdal.UseExceptions()

OLI = ("B2", "B3", "B4", "B5", "B6", "B7")


def card(unit: str) -> ModelCard:
    return ModelCard("geology", "segmentation", InputSpec(tuple(BandInfo(n, unit) for n in OLI)), OutputSpec())


def by_hand(rho: np.ndarray) -> np.ndarray:
    """The five layers of (6, ...) reflectance, written out (ratios as natural logs, reflectance floored at 0.005)."""
    b, g, r, n, s1, s2 = np.maximum(rho.astype(np.float64), 0.005)
    return np.stack([np.log(r / b), np.log(s1 / n + g / r), np.log(s1 / s2), (n - r) / (n + r), (g - s1) / (g + s1)])


def test_indices_of_one_pixel_by_hand():
    rho = np.array([0.1, 0.15, 0.3, 0.35, 0.4, 0.2])
    got = indices.compute_indices(rho)
    expected = [math.log(3.0), math.log(0.4 / 0.35 + 0.5), math.log(2.0), 0.05 / 0.65, -0.25 / 0.55]
    assert got == pytest.approx(expected, rel=1e-5)
    assert indices.compute_indices(np.array([0.0, -0.01, 0.1, 0.2, 0.0, 0.0]))[0] == pytest.approx(math.log(20))


def scene_reflectance(seed: int = 3, h: int = 23, w: int = 31) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.02, 0.6, size=(6, h, w))


# Per sensor and product: raw values of the reflectance, and the preset's raw -> model-unit mapping (presets.py)
def _oli_l1(rho):  # Level-1 DN, the standard rescaling: scale 1, offset 0 to OLI DN
    return np.round((rho + 0.1) / 2e-5).astype(np.uint16), [1.0] * 6, [0.0] * 6


def _s2_l2a(rho):  # (DN - 1000) / 10000 (baseline 04.00): scale 5, offset 5 * -1000 + 5000 to OLI DN
    return np.round(rho * 10000 + 1000).astype(np.uint16), [5.0] * 6, [0.0] * 6


def _tm_reflectance(rho):  # float reflectance: scale 50000, offset 5000 to OLI DN
    return rho.astype(np.float32), [50000.0] * 6, [5000.0] * 6


@pytest.mark.parametrize("sensor, product, formula", [
    ("oli", _oli_l1, "B4 / B2"), ("msi", _s2_l2a, "B04 / B02"), ("tm", _tm_reflectance, "B3 / B1")])
def test_index_raster_per_sensor_matches_hand_values(tmp_path, sensor, product, formula):
    rho = scene_reflectance()
    raw, scale, offset = product(rho)
    path = rasters.write_raster(tmp_path / f"{sensor}.tif", raw)
    mult, add = indices.reflectance_rescaling(card("DN"), scale, offset)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, sensor)
    out = tmp_path / "indices.tif"
    spectral.write_spectral(str(path), plan, indices_path=str(out))
    ds = gdal.Open(str(out))
    assert ds.RasterCount == 5 and ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    got = ds.ReadAsArray()
    hand = by_hand(raw.astype(np.float64) * mult[:, None, None] + add[:, None, None])
    for i in range(5):
        low, high = np.percentile(hand[i], [2, 98])
        assert got[i] == pytest.approx(np.clip((hand[i] - low) / (high - low), 0, 1), abs=2e-4)
        band = ds.GetRasterBand(i + 1)
        assert float(band.GetMetadataItem("STRETCH_LOW")) == pytest.approx(low, abs=1e-4)
    assert formula in ds.GetRasterBand(1).GetDescription()
    assert ds.GetRasterBand(1).GetDescription().startswith("ferric iron = red / blue")
    assert ds.GetRasterBand(5).GetDescription().startswith("MNDWI = (green - SWIR1) / (green + SWIR1)")


def test_reflectance_rescaling_for_both_model_units():
    # Sentinel-2 after baseline 04.00 for an OLI-DN model: scale 5, offset 0 -> rho = (v - 1000) / 10000
    m, a = indices.reflectance_rescaling(card("DN"), [5.0] * 6, [0.0] * 6)
    assert 2500 * m[0] + a[0] == pytest.approx(0.15)
    # the same scene for a reflectance model: the preset maps straight to reflectance
    m, a = indices.reflectance_rescaling(card("reflectance"), [1e-4] * 6, [-0.1] * 6)
    assert 2500 * m[0] + a[0] == pytest.approx(0.15)
    with pytest.raises(InputError, match="metres"):
        indices.reflectance_rescaling(card("metres"), [1.0] * 6, [0.0] * 6)


def test_sensor_from_preset_names():
    assert [indices.sensor_of(p) for p in ("sentinel2_l2a", "landsat_l1", "landsat7_etm_l2", "landsat_tm_l1",
                                            "reflectance", "custom", "scene_relative")] == \
        ["msi", "oli", "tm", "tm", "common", "common", "common"]
    assert [indices.sensor_of(f"{s} landsat_l1") for s in ("Landsat 4/5 TM", "Landsat 7 ETM+", "Landsat 8/9 OLI")] \
        == ["tm", "tm", "oli"]
    assert indices.sensor_of("Sentinel-2 MSI sentinel2_l1c") == "msi"


def planted(k: int, n: int = 300, dims: int = 11, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(k, dims))
    truth = np.repeat(np.arange(k), n)
    return centres[truth] + rng.normal(0, 0.5, size=(k * n, dims)), truth


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of points whose label is the most common label of their planted cluster, and one label per cluster."""
    best = [np.bincount(labels[truth == t]).argmax() for t in np.unique(truth)]
    assert len(set(best)) == len(best)
    return float(np.mean([labels[i] == best[t] for i, t in enumerate(truth)]))


@pytest.mark.parametrize("k", [3, 5, 8])
def test_kmeans_recovers_planted_clusters_and_their_number(k):
    x, truth = planted(k)
    fit, scores = kmeans.choose_k(x)
    assert fit.k == k, scores
    assert purity(fit.labels, truth) == 1.0
    assert np.array_equal(kmeans.assign(x, fit.centroids), fit.labels)
    again, _ = kmeans.choose_k(x)
    assert np.array_equal(again.centroids, fit.centroids)  # fixed seed


def surfaces_scene(tmp_path, nodata: bool = True):
    """Four planted surfaces (water, vegetation, red iron-stained rock, clay-rich white rock) in quadrants, with
    noise, as Sentinel-2 L2A DN; a strip of nodata (0) in band 4."""
    spectra = np.array([[0.06, 0.07, 0.05, 0.03, 0.01, 0.01], [0.03, 0.07, 0.04, 0.40, 0.20, 0.10],
                        [0.08, 0.12, 0.25, 0.30, 0.35, 0.30], [0.30, 0.35, 0.38, 0.42, 0.50, 0.30]])
    h, w = 40, 48
    truth = np.zeros((h, w), int)
    truth[:20, 24:], truth[20:, :24], truth[20:, 24:] = 1, 2, 3
    rng = np.random.default_rng(5)
    rho = spectra[truth].transpose(2, 0, 1) * rng.normal(1.0, 0.03, size=(6, h, w))
    raw = np.round(rho * 10000 + 1000).astype(np.uint16)
    if nodata:
        raw[3, 5:8, :] = 0
    path = rasters.write_raster(tmp_path / "s2.tif", raw, nodata=0)
    mult, add = indices.reflectance_rescaling(card("DN"), [5.0] * 6, [0.0] * 6)
    return path, truth, mult, add


def test_units_find_the_planted_surfaces_on_a_raster(tmp_path):
    path, truth, mult, add = surfaces_scene(tmp_path)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, "msi", units=True)
    assert plan.fit is not None and plan.fit.k == 4 and "silhouette" in plan.how
    out = tmp_path / "units.tif"
    result = spectral.write_spectral(str(path), plan, units_path=str(out), indices_path=str(tmp_path / "i.tif"))
    ds = gdal.Open(str(out))
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert band.GetColorTable() is not None and band.GetColorTable().GetCount() >= 5
    labels = band.ReadAsArray()
    gap = np.zeros_like(truth, bool)
    gap[5:8] = True
    assert (labels[gap] == 0).all() and (labels[~gap] > 0).all()
    assert sorted(np.unique(labels[~gap])) == [1, 2, 3, 4]
    assert purity(labels[~gap], truth[~gap]) == 1.0
    assert [u.pixels for u in result.units] == [int((labels == j).sum()) for j in range(1, 5)]
    assert sum(u.percent for u in result.units) == pytest.approx(100.0)
    water = labels[2, 2]  # the top-left quadrant
    assert result.units[water - 1].means["mndwi"] > 0.9  # the water unit has the scene's highest MNDWI
    indices_ds = gdal.Open(str(tmp_path / "i.tif"))
    nodata = indices_ds.GetRasterBand(1).GetNoDataValue()
    assert (indices_ds.ReadAsArray()[:, gap] == np.float32(nodata)).all()
    assert (tmp_path / "units.qml").read_text().count("paletteEntry") == 4
    assert "multibandcolor" in (tmp_path / "i.qml").read_text()


def test_geology_classes_counted_per_unit(tmp_path):
    from deepstrata.inference.engine.card import ClassInfo

    path, truth, mult, add = surfaces_scene(tmp_path, nodata=False)
    classes_path = rasters.write_raster(tmp_path / "classes.tif", (truth + 1).astype(np.uint8), nodata=0)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, "msi", units=True, k=4)
    names = [ClassInfo(v, n, "#000000") for v, n in ((1, "water"), (2, "vegetation"), (3, "ferric iron"),
                                                     (4, "clay / hydroxyl"))]
    result = spectral.write_spectral(str(path), plan, units_path=str(tmp_path / "u.tif"),
                                     classes_path=str(classes_path), classes=names)
    assert sorted(u.geology for u in result.units) == sorted(c.name for c in names)
    assert all(u.geology_percent == 100.0 for u in result.units)
    assert "mostly" in result.units[0].label and "k = 4 as given" in plan.how
    assert "clay / hydroxyl" in spectral.format_units(result.units)
    ds = gdal.Open(str(tmp_path / "u.tif"))
    ds.GetGeoTransform()  # GDAL 3.6 reads the .aux.xml lazily
    table = ds.GetRasterBand(1).GetDefaultRAT()
    columns = [table.GetNameOfCol(i) for i in range(table.GetColumnCount())]
    assert table.GetRowCount() == 4 and columns[:4] == ["value", "unit", "pixels", "percent"]
    assert [table.GetValueAsString(i, columns.index("geology")) for i in range(4)] == [u.geology for u in result.units]
    assert table.GetValueAsDouble(0, columns.index("mean_mndwi")) == pytest.approx(result.units[0].means["mndwi"])


def test_windowed_result_equals_whole_image(tmp_path):
    path, _, mult, add = surfaces_scene(tmp_path)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, "msi", units=True)
    whole = spectral.write_spectral(str(path), plan, str(tmp_path / "a_i.tif"), str(tmp_path / "a_u.tif"),
                                    rows=1000, columns=1000)
    small = spectral.write_spectral(str(path), plan, str(tmp_path / "b_i.tif"), str(tmp_path / "b_u.tif"),
                                    rows=7, columns=13)
    for name in ("i", "u"):
        a, b = (gdal.Open(str(tmp_path / f"{p}_{name}.tif")).ReadAsArray() for p in "ab")
        assert np.array_equal(a, b)
    assert [u.pixels for u in whole.units] == [u.pixels for u in small.units]
    for u, v in zip(whole.units, small.units):
        assert u.means == pytest.approx(v.means, rel=1e-9)


def test_outputs_keep_the_input_grid(tmp_path):
    path, _, mult, add = surfaces_scene(tmp_path)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, "msi", units=True, k=3)
    spectral.write_spectral(str(path), plan, str(tmp_path / "i.tif"), str(tmp_path / "u.tif"))
    src = gdal.Open(str(path))
    for name in ("i.tif", "u.tif"):
        ds = gdal.Open(str(tmp_path / name))
        assert ds.GetGeoTransform() == src.GetGeoTransform() and ds.GetProjection() == src.GetProjection()
        assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize)


def test_cancel_leaves_no_output(tmp_path):
    from deepstrata.inference.engine.errors import CancelledError

    path, _, mult, add = surfaces_scene(tmp_path)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, "msi", units=True, k=3)
    calls = []

    def cancel_second() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(CancelledError):
        spectral.write_spectral(str(path), plan, str(tmp_path / "i.tif"), str(tmp_path / "u.tif"), rows=8,
                                is_cancelled=cancel_second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2.tif"]


def test_a_uniform_scene_makes_one_unit(tmp_path):
    path = rasters.write_raster(tmp_path / "flat.tif", np.full((6, 30, 30), 0.2, np.float32))
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], [1.0] * 6, [0.0] * 6, units=True)
    assert plan.fit is not None and plan.fit.k == 1 and "only 1 distinct pixel value" in plan.how
    result = spectral.write_spectral(str(path), plan, str(tmp_path / "i.tif"), str(tmp_path / "u.tif"))
    assert [u.percent for u in result.units] == [100.0]
    assert np.unique(gdal.Open(str(tmp_path / "i.tif")).ReadAsArray()).tolist() == [0.0]


def test_a_valid_mask_makes_nodata_in_both_outputs(tmp_path):
    path, _, mult, add = surfaces_scene(tmp_path, nodata=False)
    clear = np.ones((40, 48), np.uint8)
    clear[30:, 40:] = 0  # a cloud
    mask = rasters.write_raster(tmp_path / "mask.tif", clear)
    plan = spectral.plan_spectral(str(path), [1, 2, 3, 4, 5, 6], mult, add, "msi", units=True, k=4,
                                  valid_mask=str(mask))
    result = spectral.write_spectral(str(path), plan, str(tmp_path / "i.tif"), str(tmp_path / "u.tif"),
                                     valid_mask=str(mask))
    labels = gdal.Open(str(tmp_path / "u.tif")).ReadAsArray()
    values = gdal.Open(str(tmp_path / "i.tif")).ReadAsArray()
    assert (labels[clear == 0] == 0).all() and (labels[clear == 1] > 0).all()
    assert (values[:, clear == 0] == np.float32(spectral.FLOAT_NODATA)).all()
    assert sum(u.pixels for u in result.units) == int(clear.sum())
