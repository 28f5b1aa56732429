"""The catalogue of bad inputs and faults through Processing (processing.run, as the dialogs and models run it).

Every case asserts the exception type (QgsProcessingException) or success, a message that names the problem and
the fix (with the paths and the parameter names), that nothing was left behind, that the inputs are
byte-identical and that earlier outputs at the destinations are byte-identical (ds_testing/faults.py).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr
from qgis.core import QgsProcessingException

from ds_testing import faults, models, rasters
from ds_testing.faults import Bench, Case, Snapshot, empty, folder, text_file, vector_geopackage
from qgis_support import DEM, RecordingFeedback

gdal.UseExceptions()
ogr.UseExceptions()

FAILS = QgsProcessingException
NEVER_INPUT = "Outputs never overwrite inputs: choose another file name or folder for the output"
OWN_NAME = "Give each output its own file name"
OUTPUT, CONFIDENCE = "Model output (OUTPUT)", "Confidence (0..1) (CONFIDENCE)"
LANDFORMS, POLYGONS, STATISTICS = "Landforms (OUTPUT)", "Class polygons (VECTORIZE)", "Class statistics (STATISTICS)"
BELOW = 1000.5


@pytest.fixture
def bench(tmp_path, ds_provider, dem_segmenter):
    b = Bench(tmp_path / "bench")
    b.name("dem", b.copy(DEM, "dem.tif"))
    b.name("seg", shutil.copy(dem_segmenter, b.models / "seg.onnx"))
    with b.stack:
        yield b


def process(algorithm: str, parameters: dict, feedback: RecordingFeedback | None = None):
    """(results or None, the exception or None, the feedback)."""
    import processing

    feedback = feedback or RecordingFeedback()
    try:
        return processing.run(f"deepstrata:{algorithm}", parameters, feedback=feedback), None, feedback
    except QgsProcessingException as exc:
        return None, exc, feedback


# ---------------------------------------------------------------------------------------------- builders

def runmodel(b: Bench, output: object = None, model: str = "seg", source: object = None, **more: object):
    return "runmodel", {"INPUT": str(source or b.names["dem"]), "MODEL": str(b.names.get(model, model)),
                        "OUTPUT": str(output or b.out / "o.tif"), **{k: str(v) for k, v in more.items()}}


def landforms(b: Bench, source: object = None, **more: object):
    return "classifylandforms", {"INPUT": str(source or b.names["dem"]), "MODEL": b.names["seg"],
                                 "OUTPUT": str(b.out / "o.tif"), "STATISTICS": "TEMPORARY_OUTPUT",
                                 **{k: str(v) for k, v in more.items()}}


def anomalies(b: Bench, source: object = None, **more: object):
    model = models.autoencoder(b.models / "anomaly.onnx", bands=1)
    return "detectanomalies", {"INPUT": str(source or b.names["dem"]), "MODEL": str(model),
                               "OUTPUT": str(b.out / "o.tif"), "OUTPUT_MASK": str(b.out / "mask.tif"),
                               **{k: str(v) for k, v in more.items()}}


def earlier(b: Bench, *names: str) -> Bench:
    for name in names or ("o.tif",):
        faults.earlier_outputs(b.out / name)
    return b


def dem_geopackage(b: Bench) -> Path:
    """The DEM as a GeoPackage raster (table 'dem'), with an unrelated vector layer beside it."""
    path = b.inputs / "dem.gpkg"
    gdal.Translate(str(path), b.names["dem"], format="GPKG", outputType=gdal.GDT_Float32,
                   creationOptions=["RASTER_TABLE=dem"])
    ds = ogr.Open(str(path), 1)
    layer = ds.CreateLayer("sites", None, ogr.wkbPoint)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POINT (380000 3790000)"))
    layer.CreateFeature(feature)
    ds = None
    return b.name("gpkg", path)


def ogr_uri(path: object, table: str) -> str:
    return f"ogr:dbname='{path}' table=\"{table}\" (geom)"


def vrt_over_dem(b: Bench) -> Path:
    vrt = b.inputs / "v.vrt"
    gdal.BuildVRT(str(vrt), [b.names["dem"]]).FlushCache()
    return b.name("vrt", vrt)


def input_file(make):
    def build(b: Bench):
        earlier(b)
        return runmodel(b, source=b.name("input", make(b.inputs)))
    return build






def nan_everywhere(b: Bench):
    earlier(b)
    return runmodel(b, model=str(models.non_finite_regressor(b.models / "nan.onnx", "nan")))


def inf_partly(b: Bench):
    z = rasters.read_raster(DEM)[0]
    lost = int((z < BELOW).sum())
    b.name("lost", f"{lost:,}")
    b.name("share", f"{100 * lost / z.size:.2f}")
    return runmodel(b, model=str(models.non_finite_regressor(b.models / "inf.onnx", "inf", BELOW)))


def missing_external_data(b: Bench):
    earlier(b)
    model = models.external_data_regressor(b.models / "ext" / "e.onnx")
    (model.parent / "weights.bin").unlink()
    b.name("model_folder", model.parent)
    return runmodel(b, model=str(model))


def full_disk(b: Bench):
    """A 1 MiB disk with 12 KiB left, earlier outputs on it: the landforms and their polygons do not fit."""
    disk = b.name("disk", b.stack.enter_context(faults.small_disk(b.root / "disk")))
    faults.earlier_outputs(disk / "o.tif")
    filler = disk / "filler.bin"
    filler.write_bytes(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 12 * 1024))
    name, parameters = landforms(b, VECTORIZE=disk / "polygons.gpkg")
    return name, {**parameters, "OUTPUT": str(disk / "o.tif")}


def gpkg_layer_twice(b: Bench):
    earlier(b)
    target = b.name("new", b.out / "new.gpkg")
    return landforms(b, STATISTICS=ogr_uri(target, "t"), VECTORIZE=ogr_uri(target, "t"))


def read_only_input(b: Bench):
    b.stack.enter_context(faults.read_only(b.inputs))
    return landforms(b)


# ---------------------------------------------------------------------------------------------- checks

def landforms_written(b: Bench) -> None:
    classes, gt, _, _ = rasters.read_raster(b.out / "o.tif")
    assert classes.shape == (1, 240, 320) and set(np.unique(classes)) <= {1, 2, 3, 4}
    assert gt == pytest.approx(rasters.read_raster(DEM)[1])


def nodata_where_infinite(b: Bench) -> None:
    values, _, _, nodata = rasters.read_raster(b.out / "o.tif")
    lost = rasters.read_raster(DEM)[0] < BELOW
    assert (values[lost] == nodata[0]).all() and (values[~lost] != nodata[0]).all()


# ---------------------------------------------------------------------------------------------- the table

CASES = [
    # data loss
    Case("VECTORIZE is the input GeoPackage", lambda b: landforms(earlier(b), dem_geopackage(b),
                                                                 VECTORIZE=b.names["gpkg"]),
         FAILS, (f"{POLYGONS} '{{gpkg}}' is the input raster ('{{gpkg}}'), a file this run reads",), (NEVER_INPUT,)),
    Case("VECTORIZE is a layer of the input GeoPackage (ogr:dbname= form)",
         lambda b: landforms(earlier(b), dem_geopackage(b), VECTORIZE=ogr_uri(b.names["gpkg"], "landforms")),
         FAILS, (f"{POLYGONS} '{{gpkg}}' (layer 'landforms') is the input raster ('{{gpkg}}')",), (NEVER_INPUT,)),
    Case("STATISTICS table is the input GeoPackage", lambda b: landforms(earlier(b), dem_geopackage(b),
                                                                        STATISTICS=b.names["gpkg"]),
         FAILS, (f"{STATISTICS} '{{gpkg}}' is the input raster ('{{gpkg}}')",), (NEVER_INPUT,)),
    Case("OUTPUT_POLYGONS is a layer of the input GeoPackage",
         lambda b: anomalies(earlier(b, "o.tif", "mask.tif"), dem_geopackage(b),
                             OUTPUT_POLYGONS=ogr_uri(b.names["gpkg"], "anomalies")),
         FAILS, ("Anomaly polygons (OUTPUT_POLYGONS) '{gpkg}' (layer 'anomalies') is the input raster ('{gpkg}')",),
         (NEVER_INPUT,)),
    Case("OUTPUT is the source file behind the input VRT",
         lambda b: runmodel(b, b.names["dem"], source=vrt_over_dem(b)),
         FAILS, (f"{OUTPUT} '{{dem}}' is a file of the input raster 'v.vrt' ('{{dem}}')",), (NEVER_INPUT,)),
    Case("OUTPUT is the input", lambda b: runmodel(b, b.names["dem"]),
         FAILS, (f"{OUTPUT} '{{dem}}' is the input raster ('{{dem}}')",), (NEVER_INPUT,)),
    Case("CONFIDENCE is OUTPUT", lambda b: runmodel(earlier(b), CONFIDENCE=b.out / "o.tif"),
         FAILS, (f"{OUTPUT} and {CONFIDENCE} are the same file ('{{out}}/o.tif')",), (OWN_NAME,)),
    Case("CONFIDENCE differs from OUTPUT only by extension (shared .qml)",
         lambda b: runmodel(earlier(b), CONFIDENCE=b.out / "o.tiff"),
         FAILS, (f"{OUTPUT} '{{out}}/o.tif' and {CONFIDENCE} '{{out}}/o.tiff' would both write '{{out}}/o.qml'",),
         ("Give them names that differ by more than the extension",)),
    Case("the same GeoPackage layer for STATISTICS and VECTORIZE", gpkg_layer_twice,
         FAILS, (f"{STATISTICS} and {POLYGONS} are the same layer 't' of '{{new}}'",),
         ("Give each output its own layer name",)),
    # vector destinations refused before any raster is written
    Case("VECTORIZE with an unsupported extension (no OUTPUT written)",
         lambda b: landforms(earlier(b), VECTORIZE=b.out / "polygons.xyz"),
         FAILS, (f"{POLYGONS} '{{out}}/polygons.xyz' has an unsupported extension '.xyz'",),
         ("use .gpkg, .shp, .geojson, .fgb",)),
    Case("VECTORIZE into a missing folder (no OUTPUT written)",
         lambda b: landforms(earlier(b), VECTORIZE=b.out / "missing" / "polygons.gpkg"),
         FAILS, (f"The folder of {POLYGONS}, '{{out}}/missing', does not exist",),
         ("Create it or choose another output path",)),
    Case("OUTPUT_POLYGONS with an unsupported extension (no score or mask written)",
         lambda b: anomalies(earlier(b, "o.tif", "mask.tif"), OUTPUT_POLYGONS=b.out / "patches.xyz"),
         FAILS, ("Anomaly polygons (OUTPUT_POLYGONS) '{out}/patches.xyz' has an unsupported extension '.xyz'",),
         ("use .gpkg, .shp, .geojson, .fgb",)),
    # destinations
    Case("OUTPUT is a folder", lambda b: runmodel(b, b.out),
         FAILS, (f"{OUTPUT} '{{out}}' is a folder, not a file",),
         ("Give a file name inside it, for example '{out}/output.tif'",)),
    Case("OUTPUT file name of 250 characters", lambda b: runmodel(earlier(b), b.out / ("n" * 246 + ".tif")),
         FAILS, (f"The file name of {OUTPUT}", "is too long: with its sidecar files it needs 258 bytes"),
         ("Choose a shorter file name",)),
    Case("disk full in a workflow (1 MiB tmpfs, 12 KiB free)", full_disk,
         FAILS, ("The disk holding '{disk}' is full: '", "' needs up to ", " is free"),
         ("Free some space there or write the output to another disk",), late=True),
    # inputs: the reason, not only "Could not load source layer for INPUT"
    Case("INPUT is missing", input_file(lambda f: f / "nothing.tif"),
         FAILS, ("Input raster not found: '{input}'",), ("Check the path",)),
    Case("INPUT is empty (0 bytes)", input_file(lambda f: empty(f / "empty.tif")),
         FAILS, ("'{input}' is empty (0 bytes), so it holds no raster",), ("copy it again",)),
    Case("INPUT is a text file", input_file(lambda f: text_file(f / "notes.txt")),
         FAILS, ("'{input}' is not a raster GDAL can read: no GDAL driver recognises it",), ("Pick a raster",)),
    Case("INPUT is a vector-only GeoPackage", input_file(lambda f: vector_geopackage(f / "points.gpkg")),
         FAILS, ("'{input}' contains no raster: it holds only vector layers (points)",), ("Pick a raster layer",)),
    Case("INPUT is a folder", input_file(lambda f: folder(f / "tiles")),
         FAILS, ("'{input}' is a folder, not a raster",), ("Pick a raster file inside it",)),
    Case("INPUT is a truncated GeoTIFF", input_file(lambda f: faults.truncated_copy(DEM, f / "cut.tif", 0.5)),
         FAILS, ("Cannot read rows", "of '{input}'", "The file may be damaged"), ("check it with gdalinfo -checksum",),
         late=True),
    Case("INPUT is a symbolic link loop", input_file(lambda f: faults.symlink_loop(f / "loop.tif")),
         FAILS, ("Input '{input}' is a symbolic link that loops back on itself",),
         ("Point it at the real raster file",)),
    Case("INPUT folder is read-only (read-only mount)", read_only_input,
         None, (), created=("{out}/o.tif", "{out}/o.tif.aux.xml", "{out}/o.qml"), verify=landforms_written),
    # models
    Case("MODEL without a card and no Task", lambda b: runmodel(earlier(b), model=str(models.no_card_model(
         b.models / "bare.onnx"))),
         FAILS, ("'bare.onnx' carries no DeepStrata card and no Deepness metadata",),
         ("set Task (segmentation or regression)", "in the algorithm's advanced parameters")),
    Case("MODEL is a Deepness detector", lambda b: runmodel(earlier(b), model=str(models.deepness_typed_model(
         b.models / "det.onnx", "Detector", bands=1))),
         FAILS, ("'Detector' is a Deepness object detection model",), ("does not support object detection yet",)),
    Case("MODEL's external data file is missing", missing_external_data,
         FAILS, ("'e.onnx' keeps its weights in a separate file, 'weights.bin', which is not in '{model_folder}'",),
         ("Copy that file next to the model",)),
    Case("MODEL returns NaN everywhere", nan_everywhere,
         FAILS, ("The model 'nan.onnx' returned NaN or infinite values for 100.0 % of the valid pixels",
                 "The fault is in the model"), ("check its export",), late=True),
    Case("MODEL returns -Inf for part of the raster (log of 0): nodata there, counted", inf_partly,
         None, ("{lost} pixels ({share} % of the valid ones) got no finite value and are written as nodata",),
         created=("{out}/o.tif", "{out}/o.qml"), verify=nodata_where_infinite),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_catalogue(case: Case, bench: Bench) -> None:
    algorithm, parameters = case.build(bench)
    watch = Snapshot(bench.root, tolerate=faults.qgis_statistics)
    results, error, feedback = process(algorithm, parameters)
    if case.status is None:
        assert error is None, str(error)
        faults.assert_told("\n".join(feedback.warnings), case, bench.names)
    else:
        assert isinstance(error, case.status), f"{case.name}: no error; results {results}"
        faults.assert_told(str(error), case, bench.names)
        if not case.late:  # refused before any work
            assert max(feedback.progress, default=0) == 0, f"{case.name}: refused after some work"
    watch.check(created=faults.fill(case.created, bench.names))
    if case.verify:
        case.verify(bench)


# ---------------------------------------------------------------------------------------------- cancelling

class CancelAt(RecordingFeedback):
    """Cancels the run from its progress callback once progress reaches `percent`."""

    def __init__(self, percent: float) -> None:
        super().__init__()
        self.percent = percent
        self.progressChanged.connect(self._maybe_cancel)

    def _maybe_cancel(self, progress: float) -> None:
        if progress >= self.percent and not self.isCanceled():
            self.cancel()


@pytest.mark.parametrize("percent", [1, 100], ids=["at the first tiles", "when the raster is done"])
def test_cancel_from_the_progress_callback_leaves_nothing(bench: Bench, percent: float) -> None:
    earlier(bench, "o.tif", "c.tif")
    faults.earlier_outputs(bench.out / "polygons.gpkg", sidecars=False)
    algorithm, parameters = landforms(bench, CONFIDENCE=bench.out / "c.tif", VECTORIZE=bench.out / "polygons.gpkg",
                                      STATISTICS=bench.out / "statistics.csv")
    watch = Snapshot(bench.root, tolerate=faults.qgis_statistics)
    feedback = CancelAt(percent)
    _, error, _ = process(algorithm, parameters, feedback)
    assert feedback.isCanceled()
    assert isinstance(error, QgsProcessingException) and "The run was cancelled; no output was written" in str(error)
    watch.check(note=f" after a cancel at {percent} %")


# ---------------------------------------------------------------------------------------------- GeoPackage layers

def layer_contents(path: Path) -> dict[str, list]:
    """Every layer of a vector file: its features' attributes and geometries (WKT), in FID order."""
    ds = ogr.Open(str(path))
    found = {}
    for i in range(ds.GetLayerCount()):
        layer = ds.GetLayer(i)
        found[layer.GetName()] = [(f.GetFID(), f.items(), f.GetGeometryRef().ExportToWkt() if f.GetGeometryRef()
                                   else None) for f in layer]
    ds = None
    return found


def project_geopackage(path: Path) -> Path:
    """A GeoPackage of someone's project: roads, a table of notes, and a stale 'landforms' layer."""
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    for name, kind, rows in (("roads", ogr.wkbLineString, ["LINESTRING (380000 3790000, 381000 3791000)"]),
                             ("notes", ogr.wkbNone, [None, None]),
                             ("landforms", ogr.wkbPolygon, ["POLYGON ((0 0, 1 0, 1 1, 0 0))"])):
        layer = ds.CreateLayer(name, None, kind)
        layer.CreateField(ogr.FieldDefn("label", ogr.OFTString))
        for k, wkt in enumerate(rows):
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("label", f"{name} {k}")
            if wkt:
                feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
            layer.CreateFeature(feature)
    ds = None
    return path


def test_polygons_into_an_existing_geopackage_keep_its_other_layers(bench: Bench) -> None:
    project = project_geopackage(bench.out / "project.gpkg")
    before = layer_contents(project)
    algorithm, parameters = landforms(bench, VECTORIZE=ogr_uri(project, "landforms"))
    watch = Snapshot(bench.root, tolerate=faults.qgis_statistics)
    results, error, _ = process(algorithm, parameters)
    assert error is None, str(error)
    watch.check(created=[bench.out / "o.tif", bench.out / "o.tif.aux.xml", bench.out / "o.qml", project])
    after = layer_contents(project)
    assert sorted(after) == ["landforms", "notes", "roads"]
    assert after["roads"] == before["roads"] and after["notes"] == before["notes"]
    assert after["landforms"] != before["landforms"] and len(after["landforms"]) > 10
    assert {items["class_name"] for _, items, _ in after["landforms"]} <= {"flat", "slope", "ridge", "valley"}


def test_two_outputs_as_two_layers_of_one_new_geopackage(bench: Bench) -> None:
    target = bench.out / "results.gpkg"
    algorithm, parameters = landforms(bench, STATISTICS=ogr_uri(target, "statistics"),
                                      VECTORIZE=ogr_uri(target, "polygons"))
    watch = Snapshot(bench.root, tolerate=faults.qgis_statistics)
    results, error, _ = process(algorithm, parameters)
    assert error is None, str(error)
    watch.check(created=[bench.out / "o.tif", bench.out / "o.tif.aux.xml", bench.out / "o.qml", target])
    layers = layer_contents(target)
    assert sorted(layers) == ["polygons", "statistics"]
    assert sum(items["pixels"] for _, items, _ in layers["statistics"]) == 320 * 240
    assert len(layers["polygons"]) > 10
