"""The catalogue of bad inputs and faults through `qgis_process run` (scripts, CI, the command line of QGIS).

Every case asserts the exit status, a message that names the problem and the fix (with the paths and the
parameter names), that nothing was left behind, that the inputs are byte-identical and that earlier outputs at
the destinations are byte-identical (ds_testing/faults.py). Each case costs a QGIS start (about 2 s), so this file
holds the cases whose path through qgis_process differs: the input checks QGIS makes before the algorithm runs,
and the data-loss refusals of each algorithm.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from osgeo import gdal, ogr

from ds_testing import faults, models
from ds_testing.faults import Bench, Case, Snapshot, empty, folder, text_file, vector_geopackage
from qgis_process.test_qgis_process import BINARY, DEM, enabled, qgis_process  # noqa: F401 (a fixture)

gdal.UseExceptions()
ogr.UseExceptions()

pytestmark = [pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} (QGIS's qgis_process) is not installed"),
              pytest.mark.usefixtures("enabled")]

NEVER_INPUT = "Outputs never overwrite inputs: choose another file name or folder for the output"
CHECKING = "An error was encountered while checking parameter values"  # qgis_process: INPUT refused before the run


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("catalogue_qgis_process_models")
    models.conv_segmenter(folder / "seg.onnx", bands=1, classes=3,
                          normalization={"method": "zscore", "mean": [1000.0], "std": [250.0]})
    models.autoencoder(folder / "anomaly.onnx", bands=1)
    models.non_finite_regressor(folder / "nan.onnx", "nan")
    return folder


@pytest.fixture
def bench(tmp_path, store):
    b = Bench(tmp_path / "bench")
    b.name("dem", b.copy(DEM, "dem.tif"))
    for name in ("seg", "anomaly", "nan"):
        b.name(name, shutil.copy(store / f"{name}.onnx", b.models / f"{name}.onnx"))
    b.earlier()
    with b.stack:
        yield b


def runmodel(b: Bench, model: str = "seg", source: object = None, **more: object) -> list[str]:
    parameters = {"INPUT": source or b.names["dem"], "MODEL": b.names[model], "OUTPUT": b.out / "o.tif", **more}
    return ["deepstrata:runmodel", *(f"{k}={v}" for k, v in parameters.items())]


def dem_geopackage(b: Bench) -> Path:
    path = b.inputs / "dem.gpkg"
    gdal.Translate(str(path), b.names["dem"], format="GPKG", outputType=gdal.GDT_Float32,
                   creationOptions=["RASTER_TABLE=dem"])
    return b.name("gpkg", path)


def input_file(make):
    def build(b: Bench) -> list[str]:
        return runmodel(b, source=b.name("input", make(b.inputs)))
    return build






def vrt_over_dem(b: Bench) -> Path:
    vrt = b.inputs / "v.vrt"
    gdal.BuildVRT(str(vrt), [b.names["dem"]]).FlushCache()
    return vrt


def vrt_with_missing_source(b: Bench) -> list[str]:
    gone = b.name("gone", b.inputs / "gone.tif")
    shutil.copy(b.names["dem"], gone)
    gdal.BuildVRT(str(b.inputs / "v.vrt"), [str(gone)]).FlushCache()
    gone.unlink()
    return runmodel(b, source=b.inputs / "v.vrt")


def polygons_into_the_input(b: Bench) -> list[str]:
    gpkg = dem_geopackage(b)
    return ["deepstrata:classifylandforms", f"INPUT={gpkg}", f"MODEL={b.names['seg']}", f"OUTPUT={b.out / 'o.tif'}",
            f"VECTORIZE=ogr:dbname='{gpkg}' table=\"landforms\" (geom)"]


def anomaly_polygons_into_the_input(b: Bench) -> list[str]:
    gpkg = dem_geopackage(b)
    faults.earlier_outputs(b.out / "mask.tif")
    return ["deepstrata:detectanomalies", f"INPUT={gpkg}", f"MODEL={b.names['anomaly']}",
            f"OUTPUT={b.out / 'o.tif'}", f"OUTPUT_MASK={b.out / 'mask.tif'}", f"OUTPUT_POLYGONS={gpkg}"]


def polygons_with_unsupported_extension(b: Bench) -> list[str]:
    return ["deepstrata:classifylandforms", f"INPUT={b.names['dem']}", f"MODEL={b.names['seg']}",
            f"OUTPUT={b.out / 'o.tif'}", f"VECTORIZE={b.out / 'polygons.xyz'}"]


CASES = [
    Case("VECTORIZE is a layer of the input GeoPackage (ogr:dbname= form)", polygons_into_the_input,
         1, ("Class polygons (VECTORIZE) '{gpkg}' (layer 'landforms') is the input raster ('{gpkg}')",),
         (NEVER_INPUT,)),
    Case("OUTPUT_POLYGONS is the input GeoPackage", anomaly_polygons_into_the_input,
         1, ("Anomaly polygons (OUTPUT_POLYGONS) '{gpkg}' is the input raster ('{gpkg}')",), (NEVER_INPUT,)),
    Case("VECTORIZE with an unsupported extension (no OUTPUT written)", polygons_with_unsupported_extension,
         1, ("Class polygons (VECTORIZE) '{out}/polygons.xyz' has an unsupported extension '.xyz'",),
         ("use .gpkg, .shp, .geojson, .fgb",)),
    Case("OUTPUT is the source file behind the input VRT",
         lambda b: runmodel(b, source=vrt_over_dem(b), OUTPUT=b.names["dem"]),
         1, ("Model output (OUTPUT) '{dem}' is a file of the input raster 'v.vrt' ('{dem}')",), (NEVER_INPUT,)),
    Case("CONFIDENCE is OUTPUT", lambda b: runmodel(b, CONFIDENCE=b.out / "o.tif"),
         1, ("Model output (OUTPUT) and Confidence (0..1) (CONFIDENCE) are the same file ('{out}/o.tif')",),
         ("Give each output its own file name",)),
    Case("MODEL returns NaN everywhere", lambda b: runmodel(b, "nan"),
         1, ("The model 'nan.onnx' returned NaN or infinite values for 100.0 % of the valid pixels",
             "The fault is in the model"), ("check its export",)),
    Case("INPUT is missing", input_file(lambda f: f / "nothing.tif"),
         1, (CHECKING, "Input raster not found: '{input}'"), ("Check the path",)),
    Case("INPUT is empty (0 bytes)", input_file(lambda f: empty(f / "empty.tif")),
         1, (CHECKING, "'{input}' is empty (0 bytes), so it holds no raster"), ("copy it again",)),
    Case("INPUT is a text file", input_file(lambda f: text_file(f / "notes.txt")),
         1, (CHECKING, "'{input}' is not a raster GDAL can read: no GDAL driver recognises it"), ("Pick a raster",)),
    Case("INPUT is a vector-only GeoPackage", input_file(lambda f: vector_geopackage(f / "points.gpkg")),
         1, (CHECKING, "'{input}' contains no raster: it holds only vector layers (points)"),
         ("Pick a raster layer",)),
    Case("INPUT is a folder", input_file(lambda f: folder(f / "tiles")),
         1, (CHECKING, "'{input}' is a folder, not a raster"), ("Pick a raster file inside it",)),
    Case("INPUT is a truncated GeoTIFF", input_file(lambda f: faults.truncated_copy(DEM, f / "cut.tif", 0.5)),
         1, ("Cannot read rows", "of '{input}'", "The file may be damaged"), ("check it with gdalinfo -checksum",)),
    Case("INPUT is a symbolic link loop", input_file(lambda f: faults.symlink_loop(f / "loop.tif")),
         1, (CHECKING, "Input '{input}' is a symbolic link that loops back on itself"),
         ("Point it at the real raster file",)),
    Case("INPUT VRT whose source is missing", vrt_with_missing_source,
         1, ("'v.vrt' is a virtual raster (VRT) whose source 'gone.tif' does not exist (looked for '{gone}')",),
         ("Restore that file, or rebuild the VRT",)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_catalogue(case: Case, bench: Bench) -> None:
    arguments = case.build(bench)
    watch = Snapshot(bench.root, tolerate=faults.qgis_statistics)
    done = qgis_process("run", arguments[0], "--", *arguments[1:])
    told = done.stdout + done.stderr
    assert done.returncode == case.status, told
    faults.assert_told(told, case, bench.names)
    watch.check(created=faults.fill(case.created, bench.names))
