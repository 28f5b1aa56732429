"""The catalogue of bad inputs and faults through the command line (python -m deepstrata.inference run).

Every case asserts the exit status, a message that names the problem and the fix (with the paths), that nothing
was left behind (no .deepstrata-* file, no partial output, no stray .aux.xml or .qml), that the inputs are
byte-identical and, where an earlier output sits at the destination, that it is byte-identical too
(ds_testing/faults.py: Case, Bench, Snapshot). Signals, a hard kill, concurrent runs and external data are in
test_catalogue_cli_faults.py.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference.engine.destinations import gdal_path_limit
from ds_testing import faults, models, rasters
from ds_testing.cli_runs import cli, cli_args as run
from ds_testing.faults import Bench, Case, Snapshot, empty, folder, text_file, vector_geopackage
from ds_testing.paths import DEM

gdal.UseExceptions()

DEM_PIXELS = 320 * 240
BELOW = 1000.5  # the partly non-finite models fail below this elevation
PEER_RECOGNITION = (Path(__file__).resolve().parents[3] / "shared" / "peers" / "deepness" / "test" / "data" /
                    "dummy_model" / "dummy_recognition_model.onnx")
GDAL_PATH_LIMIT = gdal_path_limit()


def earlier(b: Bench) -> Bench:
    """The bench with earlier outputs at out/o.tif, out/o.tif.aux.xml and out/o.qml."""
    b.earlier()
    return b


# ---------------------------------------------------------------------------------------------- builders

def vrt_over_dem(b: Bench, name: str = "v.vrt", source: Path | None = None) -> Path:
    vrt = b.inputs / name
    gdal.BuildVRT(str(vrt), [str(source or b.inputs / "dem.tif")]).FlushCache()
    return b.name("vrt", vrt)


def vrt_with_missing_source(b: Bench) -> list:
    gone = b.inputs / "gone.tif"
    gone.write_bytes(Path(b.names["dem"]).read_bytes())
    vrt_over_dem(b, source=gone)
    gone.unlink()
    b.name("gone", gone)
    b.earlier()
    return run(b, b.out / "o.tif", source=b.names["vrt"])


def output_is_vrt_source(b: Bench) -> list:
    return run(b, b.names["dem"], source=vrt_over_dem(b))


def hard_link_of_input(b: Bench) -> list:
    link = b.name("hard", b.inputs / "hard.tif")
    os.link(b.names["dem"], link)
    return run(b, link)


def symlink_to_input(b: Bench) -> list:
    link = b.name("link", b.out / "link.tif")
    os.symlink(b.names["dem"], link)
    return run(b, link)


def external_data_as_output(b: Bench) -> list:
    model = models.external_data_regressor(b.models / "ext" / "scaled.onnx", location="weights.tif")
    b.name("weights", model.parent / "weights.tif")
    return run(b, model.parent / "weights.tif", str(model))


def long_name(b: Bench) -> list:
    b.earlier()
    return run(b, b.out / ("n" * 246 + ".tif"))


def deep_path(b: Bench, length: int) -> Path:
    """A file of a path `length` bytes long, in folders of 200-byte names (created while the path allows)."""
    folder = b.out
    while len(str(folder)) + 201 + 6 < length:
        folder = folder / ("d" * 200)
    target = folder / ("f" * (length - len(str(folder)) - 5) + ".tif")
    if len(str(folder)) < 4000:
        folder.mkdir(parents=True, exist_ok=True)
    assert len(str(target)) == length
    return target


def path_3000(b: Bench) -> list:
    b.earlier()
    target = b.name("deep", deep_path(b, 3000))
    b.name("deep_qml", target.with_suffix(".qml"))
    return run(b, target)


def input_path_3000(b: Bench) -> list:
    b.earlier()
    source = b.name("deep", deep_path(b, 3000))
    shutil.copy(DEM, source)
    return run(b, b.out / "o.tif", source=source)


def path_5000(b: Bench) -> list:
    b.earlier()
    return run(b, deep_path(b, 5000))


def output_fifo(b: Bench) -> list:
    fifo = b.name("fifo", b.out / "pipe.tif")
    os.mkfifo(fifo)
    return run(b, fifo)


def model_file(make):
    def build(b: Bench) -> list:
        b.earlier()
        return run(b, b.out / "o.tif", str(b.name("model", make(b.models))))
    return build


def input_file(make):
    def build(b: Bench) -> list:
        b.earlier()
        return run(b, b.out / "o.tif", source=b.name("input", make(b.inputs)))
    return build






def no_crs(b: Bench) -> list:
    source = rasters.write_raster(b.inputs / "no_crs.tif", rasters.smooth_random(1, 64, 80), epsg=None)
    return run(b, b.out / "o.tif", "reg", b.name("input", source))


def all_nodata(b: Bench) -> list:
    source = rasters.write_raster(b.inputs / "empty.tif", np.full((1, 60, 70), -9999, np.float32), nodata=-9999)
    return run(b, b.out / "o.tif", "reg", b.name("input", source))


def non_finite(value: str, below: float | None = None):
    def build(b: Bench) -> list:
        b.earlier()
        model = models.non_finite_regressor(b.models / f"{value}.onnx", value, below)
        return run(b, b.out / "o.tif", str(model))
    return build


def partly_nan(b: Bench) -> list:
    model = models.non_finite_regressor(b.models / "nan.onnx", "nan", BELOW)
    lost = int((rasters.read_raster(DEM)[0] < BELOW).sum())
    assert 0.1 < lost / DEM_PIXELS < 0.5  # some of it, less than half
    b.name("lost", f"{lost:,}")
    b.name("share", f"{100 * lost / DEM_PIXELS:.2f}")
    return run(b, b.out / "o.tif", str(model))


def escaping_external_data(b: Bench) -> list:
    b.earlier()
    model = models.external_data_regressor(b.models / "escape" / "e.onnx", location="../weights.bin")
    b.name("model_folder", model.parent)
    return run(b, b.out / "o.tif", str(model))


def missing_external_data(b: Bench) -> list:
    b.earlier()
    model = models.external_data_regressor(b.models / "ext" / "e.onnx")
    (model.parent / "weights.bin").unlink()
    b.name("model_folder", model.parent)
    return run(b, b.out / "o.tif", str(model))


def read_only_output_folder(b: Bench) -> list:
    shut = b.name("shut", b.root / "shut")
    faults.earlier_outputs(shut / "o.tif")
    b.stack.enter_context(faults.read_only(shut))
    return run(b, shut / "o.tif")


def read_only_input_folder(b: Bench) -> list:
    b.stack.enter_context(faults.read_only(b.inputs))
    return run(b, b.out / "o.tif")


def full_disk(b: Bench) -> list:
    noise = np.random.default_rng(0).random((1, 1024, 1024), dtype=np.float32) * 1000  # does not compress
    source = rasters.write_raster(b.inputs / "noise.tif", noise)
    disk = b.name("disk", b.stack.enter_context(faults.small_disk(b.root / "disk")))
    faults.earlier_outputs(disk / "o.tif")
    return run(b, disk / "o.tif", "reg", source)


def missing_folder(b: Bench) -> list:
    b.earlier()
    return run(b, b.out / "missing" / "o.tif")


# ---------------------------------------------------------------------------------------------- checks

def classes_of_the_dem(path: str):
    def verify(b: Bench) -> None:
        classes, gt, wkt, nodata = rasters.read_raster(b.names[path] if path in b.names else path.format(**b.names))
        assert classes.shape == (1, 240, 320) and set(np.unique(classes)) <= {1, 2, 3}
        assert gt == pytest.approx(rasters.read_raster(DEM)[1]) and "32611" in wkt
    return verify


def no_projection(b: Bench) -> None:
    values, _, wkt, _ = rasters.read_raster(b.out / "o.tif")
    assert wkt == "" and np.allclose(values, rasters.read_raster(b.names["input"])[0])


def only_nodata(b: Bench) -> None:
    values, _, _, nodata = rasters.read_raster(b.out / "o.tif")
    assert values.shape == (1, 60, 70) and (values == nodata[0]).all()


def nodata_where_not_finite(b: Bench) -> None:
    values, _, _, nodata = rasters.read_raster(b.out / "o.tif")
    z = rasters.read_raster(DEM)[0].astype(np.float32)
    lost = z < BELOW
    assert (values[lost] == nodata[0]).all()
    assert np.allclose(values[~lost], np.sqrt(z[~lost] - np.float32(BELOW)), rtol=1e-5)


# ---------------------------------------------------------------------------------------------- the table

FIX_NAME = "Give each output its own file name"
NEVER_INPUT = "Outputs never overwrite inputs: choose another file name or folder for the output"

CASES = [
    # data loss: an output that is another output, or a file the run reads
    Case("confidence is the output", lambda b: run(earlier(b), b.out / "o.tif", "seg", None, "--confidence",
                                                                      b.out / "o.tif"),
         1, ("--output and --confidence are the same file ('{out}/o.tif')",), (FIX_NAME,)),
    Case("confidence differs from the output only by extension (shared .qml)",
         lambda b: run(earlier(b), b.out / "o.tif", "seg", None, "--confidence", b.out / "o.tiff"),
         1, ("--output '{out}/o.tif' and --confidence '{out}/o.tiff' would both write '{out}/o.qml'",),
         ("Give them names that differ by more than the extension",)),
    Case("output is the source file behind the input VRT", output_is_vrt_source,
         1, ("--output '{dem}' is a file of the input raster 'v.vrt' ('{dem}'), a file this run reads",),
         (NEVER_INPUT,)),
    Case("output is the input", lambda b: run(b, b.names["dem"]),
         1, ("--output '{dem}' is the input raster ('{dem}')",), (NEVER_INPUT,)),
    Case("output is a hard link of the input", hard_link_of_input,
         1, ("--output '{hard}' is the input raster ('{dem}')",), (NEVER_INPUT,)),
    Case("output is a symbolic link to the input", symlink_to_input,
         1, ("--output '{link}' is the input raster ('{dem}')",), (NEVER_INPUT,)),
    Case("output is the model's external data file", external_data_as_output,
         1, ("--output '{weights}' is the model's external data ('{weights}')",), (NEVER_INPUT,)),
    # destinations that cannot be written
    Case("output is a folder", lambda b: run(b, b.out),
         1, ("--output '{out}' is a folder, not a file",),
         ("Give a file name inside it, for example '{out}/output.tif'",)),
    Case("output is a named pipe", output_fifo,
         1, ("--output '{fifo}' exists and is not a regular file (a device or a pipe)",), ("Choose a file name",)),
    Case("output is not a GeoTIFF", lambda b: run(b, b.out / "o.png"),
         1, ("--output '{out}/o.png' must be a GeoTIFF",), ("use a file name ending in .tif",)),
    Case("output folder is missing", missing_folder,
         1, ("The folder of --output, '{out}/missing', does not exist",), ("Create it or choose another output path",)),
    Case("output file name of 250 characters", long_name,
         1, ("The file name of --output", "250 bytes) is too long: with its sidecar files it needs 258 bytes, and "
             "this file system allows 255"), ("Choose a shorter file name",)),
    Case("output path of 5,000 characters", path_5000,
         1, ("The path of --output is 5000 bytes long, but this file system allows at most 4095",),
         ("Choose a shorter folder or file name",)),
    Case("output path of 3,000 characters (longer than GDAL reads back)", path_3000,
         1, ("The path of --output is 3000 bytes long (3008 with its sidecar files), but GDAL "
             f"{gdal.__version__} reads back only files whose path is at most {GDAL_PATH_LIMIT} bytes",),
         ("Choose a shorter folder or file name",))
    if GDAL_PATH_LIMIT else
    Case("output path of 3,000 characters (this GDAL reads it back: written)", path_3000,
         0, ("Wrote {deep}",), created=("{deep}", "{deep}.aux.xml", "{deep_qml}"), verify=classes_of_the_dem("deep")),
    Case("output is a symbolic link loop", lambda b: run(b, faults.symlink_loop(b.name("loop", b.out / "loop.tif"))),
         1, ("--output '{loop}' is a symbolic link that loops back on itself",),
         ("Remove the link or choose another file name",)),
    Case("output folder is read-only (read-only mount)", read_only_output_folder,
         1, ("Cannot write into '{shut}' for --output (it is on a read-only file system)",),
         ("Choose a folder you can write to",)),
    Case("disk full (1 MiB tmpfs)", full_disk,
         1, ("The disk holding '{disk}' is full: 'o.tif' needs up to 4.0 MiB (uncompressed) and ",),
         ("Free some space there or write the output to another disk", "Earlier files are unchanged"), late=True),
    # inputs
    Case("input is missing", input_file(lambda f: f / "nothing.tif"),
         2, ("Input raster not found: '{input}'",), ("Check the path",)),
    Case("input is empty (0 bytes)", input_file(lambda f: empty(f / "empty.tif")),
         2, ("'{input}' is empty (0 bytes), so it holds no raster",), ("copy it again",)),
    Case("input is a text file", input_file(lambda f: text_file(f / "notes.txt")),
         2, ("'{input}' is not a raster GDAL can read: no GDAL driver recognises it",),
         ("Pick a raster (GeoTIFF, VRT",)),
    Case("input is a vector-only GeoPackage", input_file(lambda f: vector_geopackage(f / "points.gpkg")),
         2, ("'{input}' contains no raster: it holds only vector layers (points)",), ("Pick a raster layer",)),
    Case("input is a folder", input_file(lambda f: folder(f / "tiles")),
         2, ("'{input}' is a folder, not a raster",), ("Pick a raster file inside it",)),
    Case("input is a truncated GeoTIFF", input_file(lambda f: faults.truncated_copy(DEM, f / "cut.tif", 0.5)),
         2, ("Cannot read rows", "of '{input}'", "TIFFReadEncodedStrip() failed", "The file may be damaged"),
         ("check it with gdalinfo -checksum",), late=True),
    Case("input is a symbolic link loop", input_file(lambda f: faults.symlink_loop(f / "loop.tif")),
         2, ("Input '{input}' is a symbolic link that loops back on itself",), ("Point it at the real raster file",)),
    Case("input path of 3,000 characters (longer than GDAL reads)", input_path_3000,
         2, ("The path of the input raster '", "' is 3000 bytes long, but GDAL "
             f"{gdal.__version__} reads only files whose path (with '.aux.xml') is at most {GDAL_PATH_LIMIT} bytes",),
         ("Move or copy the raster to a shorter path",))
    if GDAL_PATH_LIMIT else
    Case("input path of 3,000 characters (this GDAL reads it)", input_path_3000,
         0, ("Wrote {out}/o.tif",), created=("{out}/o.tif", "{out}/o.tif.aux.xml", "{out}/o.qml"),
         verify=classes_of_the_dem("{out}/o.tif")),
    Case("input VRT whose source is missing", vrt_with_missing_source,
         2, ("'v.vrt' is a virtual raster (VRT) whose source 'gone.tif' does not exist (looked for '{gone}')",),
         ("Restore that file, or rebuild the VRT",)),
    Case("input folder is read-only (read-only mount)", read_only_input_folder,
         0, ("Wrote {out}/o.tif",), created=("{out}/o.tif", "{out}/o.tif.aux.xml", "{out}/o.qml"),
         verify=classes_of_the_dem("{out}/o.tif")),
    Case("input without a CRS (warning, still written)", no_crs,
         0, ("'no_crs.tif' has no CRS: the output is written without one",), ("Assign the layer's CRS",),
         created=("{out}/o.tif", "{out}/o.qml"), verify=no_projection),
    Case("input where every pixel is nodata (warning, all-nodata output)", all_nodata,
         0, ("Every pixel of 'empty.tif' is nodata (or masked), so the output holds only nodata",),
         ("Check the layer's nodata value",), created=("{out}/o.tif", "{out}/o.qml"), verify=only_nodata),
    Case("band out of range", lambda b: run(earlier(b), b.out / "o.tif", "seg", None, "--bands", "5"),
         2, ("Band 5 does not exist: 'dem.tif' has 1 band (1-1)",), ("Choose bands between 1 and 1",)),
    Case("wrong band count", lambda b: run(earlier(b), b.out / "o.tif", "seg3"),
         2, ("The model takes 3 bands (b1, b2, b3) but 'dem.tif' has 1 band",),
         ("Choose which raster bands feed the model (Bands / --bands",)),
    Case("extent outside the raster", lambda b: run(earlier(b), b.out / "o.tif", "seg", None, "--extent",
                                                                     "0,0,100,100"),
         2, ("The extent (0, 0, 100, 100) lies outside the raster 'dem.tif'",),
         ("Choose an extent that overlaps the layer, in the layer's CRS",)),
    Case("negative tile size (argparse)", lambda b: run(b, b.out / "o.tif", "seg", None, "--tile-size", "-64"),
         2, ("argument --tile-size: the tile size must be 1 or more, not -64",)),
    # models
    Case("model file is missing", model_file(lambda f: f / "none.onnx"),
         1, ("Model file not found: '{model}'",), ("Check the path, or pick a .onnx file",)),
    Case("model file is empty", model_file(lambda f: empty(f / "empty.onnx")),
         1, ("Model file '{model}' is empty",), ("Export or download it again",)),
    Case("model is a folder", model_file(lambda f: folder(f / "model.onnx")),
         1, ("'{model}' is a folder, not a model file",), ("Pick the .onnx file inside it",)),
    Case("model is not ONNX", model_file(lambda f: models.write_not_onnx(f / "notes.onnx")),
         1, ("'notes.onnx' is not a valid ONNX model or is corrupt",), ("Export it again",)),
    Case("model is corrupt (half its bytes)", model_file(lambda f: models.write_corrupt_model(f / "half.onnx")),
         1, ("'half.onnx' is not a valid ONNX model or is corrupt",),
         ("check that the file was copied completely",)),
    Case("model is a symbolic link loop", model_file(lambda f: faults.symlink_loop(f / "loop.onnx")),
         1, ("Model file '{model}' is a symbolic link that loops back on itself",),
         ("Point it at the real .onnx file",)),
    Case("model without a card and no --task", model_file(lambda f: models.no_card_model(f / "bare.onnx")),
         1, ("'bare.onnx' carries no DeepStrata card and no Deepness metadata",),
         ("--task segmentation --classes water,land", "'bare.onnx.json'")),
    Case("Deepness detector model", model_file(lambda f: models.deepness_typed_model(f / "det.onnx", "Detector")),
         1, ("'Detector' is a Deepness object detection model",), ("does not support object detection yet",)),
    Case("model input with no static shape", model_file(lambda f: models.no_shape_model(f / "shapeless.onnx")),
         1, ("The model's input has shape unknown (no static rank)",),
         ("Re-export the model with its input shape declared",)),
    Case("external data outside the model's folder ('../weights.bin')", escaping_external_data,
         1, ("'e.onnx' keeps weights in '../weights.bin', outside the model's folder '{model_folder}'",),
         ("put the file beside the model",)),
    Case("external data file missing", missing_external_data,
         1, ("'e.onnx' keeps its weights in a separate file, 'weights.bin', which is not in '{model_folder}'",),
         ("Copy that file next to the model",)),
    Case("model returns NaN everywhere", non_finite("nan"),
         1, ("The model 'nan.onnx' returned NaN or infinite values for 100.0 % of the valid pixels "
             f"({DEM_PIXELS:,} of {DEM_PIXELS:,}), so there is nothing to write", "The fault is in the model"),
         ("check its export",), late=True),
    Case("model returns Inf everywhere (division by zero)", non_finite("inf"),
         1, ("The model 'inf.onnx' returned NaN or infinite values for 100.0 % of the valid pixels",
             "The fault is in the model"), ("check its export",), late=True),
    Case("model returns NaN for part of the raster (nodata there, counted)", partly_nan,
         0, ("pixels ({share} % of the valid ones) got no finite value and are written as nodata", "{lost} pixels"),
         created=("{out}/o.tif", "{out}/o.qml"), verify=nodata_where_not_finite),
]
if PEER_RECOGNITION.exists():
    CASES.append(Case("Deepness recognition model (2-D output)",
                      model_file(lambda f: Path(shutil.copy(PEER_RECOGNITION, f))),
                      1, ("Unsupported output shape ['batch_size', 224] for a regression model",),
                      ("It looks like a recognition or embedding model, which DeepStrata does not run yet",)))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_catalogue(case: Case, bench: Bench) -> None:
    args = case.build(bench)
    watch = Snapshot(bench.root)
    done = cli("run", *args)
    told = done.stderr + done.stdout
    assert done.returncode == case.status, told
    faults.assert_told(told, case, bench.names)
    if case.status and not case.late:  # refused before any work: no tile ran
        assert "%" not in done.stderr, f"{case.name}: refused only after some work:\n{done.stderr}"
    watch.check(created=faults.fill(case.created, bench.names))
    if case.status == 0:
        assert "error" not in done.stderr, done.stderr
    if case.verify:
        case.verify(bench)
