"""The catalogue of bad inputs and faults through the command line (python -m deepstrata.inference run).

Every case asserts the exit status, a message that names the problem and the fix (with the paths), that nothing
was left behind (no .deepstrata-* file, no partial output, no stray .aux.xml or .qml), that the inputs are
byte-identical and, where an earlier output sits at the destination, that it is byte-identical too
(ds_testing/faults.py: Case, Bench, Snapshot). Signals are sent at chosen moments of a run through the fault
injector ``python -m ds_testing.faults POINT -- run ...``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference.engine.destinations import gdal_path_limit
from ds_testing import faults, models, rasters
from ds_testing.faults import Bench, Case, Snapshot
from ds_testing.paths import DEM

gdal.UseExceptions()

DEM_PIXELS = 320 * 240
BELOW = 1000.5  # the partly non-finite models fail below this elevation
PEER_RECOGNITION = (Path(__file__).resolve().parents[3] / "shared" / "peers" / "deepness" / "test" / "data" /
                    "dummy_model" / "dummy_recognition_model.onnx")
GDAL_PATH_LIMIT = gdal_path_limit()
CANCELLED = "cancelled ({}); nothing was written and earlier files are unchanged"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The models most cases use, built once and copied into each bench."""
    folder = tmp_path_factory.mktemp("catalogue_models")
    models.conv_segmenter(folder / "seg.onnx", bands=1, classes=3,
                          normalization={"method": "zscore", "mean": [1000.0], "std": [250.0]})
    models.conv_segmenter(folder / "seg3.onnx", bands=3, classes=3)
    models.identity_regressor(folder / "reg.onnx", bands=1)
    return folder


@pytest.fixture
def bench(tmp_path, store):
    b = Bench(tmp_path / "bench")
    b.name("dem", b.copy(DEM, "dem.tif"))
    for name in ("seg", "seg3", "reg"):
        target = b.models / f"{name}.onnx"
        target.write_bytes((store / f"{name}.onnx").read_bytes())
        b.name(name, target)
    with b.stack:
        yield b


def earlier(b: Bench) -> Bench:
    """The bench with earlier outputs at out/o.tif, out/o.tif.aux.xml and out/o.qml."""
    b.earlier()
    return b


def run(b: Bench, output: str | Path, model: str = "seg", source: str | Path | None = None, *extra: object) -> list:
    """The arguments of `run`: a model of the bench (by name) or a path, the DEM unless `source`, `output`."""
    chosen = b.names[model] if model in b.names else model
    return ["--model", chosen, "--input", source or b.names["dem"], "--output", output, *extra]


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


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def empty(path: Path) -> Path:
    path.touch()
    return path


def text_file(path: Path) -> Path:
    path.write_text("Field notes: the DEM is on the shared drive.\n", encoding="utf-8")
    return path


def vector_geopackage(path: Path) -> Path:
    from osgeo import ogr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("points", None, ogr.wkbPoint)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POINT (1 2)"))
    layer.CreateFeature(feature)
    ds = None
    return path


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
    done = faults.cli("run", *args)
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


# ---------------------------------------------------------------------------------------------- signals

def _signal_args(b: Bench) -> list:
    """A run with two outputs (a class raster and its confidence), earlier outputs at both."""
    b.earlier()
    faults.earlier_outputs(b.out / "c.tif")
    return run(b, b.out / "o.tif", "seg", None, "--tile-size", "32", "--confidence", b.out / "c.tif")


def _replaced(b: Bench, watch: Snapshot) -> list[str]:
    """The outputs whose earlier file has already been replaced (set aside by the commit)."""
    return [name for name in ("o.tif", "c.tif") if watch.before[str(b.out / name)] != faults.digest(b.out / name)]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", ["writer", "tile:3", "commit:1"],
                         ids=["before the first tile", "mid-run", "during the commit"])
def test_a_signal_cancels_and_earlier_outputs_stay(bench: Bench, point: str, number: int) -> None:
    args = _signal_args(bench)
    watch = Snapshot(bench.root)
    cli = faults.PausedCli(point, "run", *args)
    cli.wait_paused()
    if point.startswith("commit"):  # the commit has begun: a new file is in place, its earlier one set aside
        assert _replaced(bench, watch)
    else:
        assert any(faults.TEMP_NAME.match(n) for n in os.listdir(bench.out))  # staged, not yet in place
    cli.send(number)
    status, out, err = cli.finish()
    name = signal.Signals(number).name
    assert status == 128 + number, err
    assert err.strip().splitlines()[-1] == f"error: {CANCELLED.format(name)}"
    assert "Traceback" not in err and "Wrote" not in out
    watch.check(note=f" after {name} {point}")


@pytest.mark.parametrize("point", ["tile:3", "commit:1"], ids=["mid-run", "during the commit"])
def test_sigkill_leaves_only_its_own_files_and_the_next_run_removes_them(bench: Bench, point: str) -> None:
    from deepstrata.inference.engine.staging import HOST

    args = _signal_args(bench)
    watch = Snapshot(bench.root)
    cli = faults.PausedCli(point, "run", *args)
    cli.wait_paused()
    cli.send(signal.SIGKILL)
    status, _, err = cli.finish()
    assert status == -signal.SIGKILL, err
    left = faults.temporaries(bench.root)
    assert left
    for path in left:
        match = faults.TEMP_NAME.match(Path(path).name)
        assert match and match["host"] == HOST and match["pid"] == str(cli.pid), path
    if point.startswith("commit"):  # killed half-way through its commit: a new file in place, the old one aside
        assert _replaced(bench, watch)
        assert any(".journal" in p for p in left) and any(".backup" in p for p in left)

    done = faults.cli("run", "--quiet", *run(bench, bench.out / "next.tif"))  # the next run into that folder
    assert done.returncode == 0, done.stderr
    watch.check(created=[bench.out / "next.tif", bench.out / "next.tif.aux.xml", bench.out / "next.qml"],
                note=" after the next run")


def test_sigint_mid_run_of_the_real_cli(bench: Bench) -> None:
    """No injected pause: the real `python -m deepstrata.inference`, interrupted at its first progress line."""
    bench.earlier()
    big = rasters.write_raster(bench.inputs / "big.tif",
                               (rasters.smooth_random(1, 768, 1024) * 1000 + 500).astype(np.float32))
    watch = Snapshot(bench.root)
    proc = subprocess.Popen([sys.executable, "-m", "deepstrata.inference", "run",
                             *run(bench, bench.out / "o.tif", "seg", big, "--tile-size", "16", "--batch-size", "1")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=faults.env())
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "%" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=60)
    err = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"error: {CANCELLED.format('SIGINT')}"
    assert "100%" not in err and "Wrote" not in out
    watch.check()


# ---------------------------------------------------------------------------------------------- concurrency

def test_two_runs_to_the_same_output_at_once(bench: Bench) -> None:
    big = rasters.write_raster(bench.inputs / "big.tif",
                               (rasters.smooth_random(1, 512, 640, seed=3) * 1000 + 500).astype(np.float32))
    args = run(bench, bench.out / "o.tif", "seg", big, "--tile-size", "32", "--batch-size", "1")
    procs = [subprocess.Popen([sys.executable, "-m", "deepstrata.inference", "run", "--quiet", *map(str, args)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=faults.env())
             for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for status, _, err in results:  # each finished, or failed cleanly with one line
        assert status == 0 or (status == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err), err
    assert any(status == 0 for status, _, _ in results)
    assert not faults.temporaries(bench.root)
    assert sorted(os.listdir(bench.out)) == ["o.qml", "o.tif", "o.tif.aux.xml"]
    ds = gdal.Open(str(bench.out / "o.tif"))
    classes = ds.ReadAsArray()
    ds.GetRasterBand(1).Checksum()  # every block decodes
    z = rasters.read_raster(big)[0]
    expected = models.reference_run(bench.models / "seg.onnx", (z - 1000.0) / 250.0).argmax(axis=0) + 1
    assert float((classes == expected).mean()) > 0.999


# ---------------------------------------------------------------------------------------------- external data

def test_external_data_is_read_beside_the_model_never_from_the_working_directory(bench: Bench,
                                                                                  tmp_path: Path) -> None:
    model = models.external_data_regressor(bench.models / "ext" / "scaled.onnx", factor=2.0)
    elsewhere = tmp_path / "elsewhere"
    models.external_data_regressor(elsewhere / "decoy.onnx", factor=7.0).unlink()  # leaves a decoy weights.bin
    assert (elsewhere / "weights.bin").exists()
    watch = Snapshot(bench.root, elsewhere)
    done = faults.cli("run", "--quiet", *run(bench, bench.out / "o.tif", str(model)), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    watch.check(created=[bench.out / "o.tif", bench.out / "o.qml"])
    assert np.array_equal(rasters.read_raster(bench.out / "o.tif")[0], 2 * rasters.read_raster(DEM)[0])


# ---------------------------------------------------------------------------------------------- case folding

def test_an_output_that_is_the_input_in_another_case(bench: Bench) -> None:
    folded = bench.stack.enter_context(faults.case_folding(bench.root / "folded"))
    source = folded / "DEM.tif"
    shutil.copy(DEM, source)
    watch = Snapshot(bench.root)
    done = faults.cli("run", "--quiet", *run(bench, folded / "dem.TIF", "seg", source))
    assert done.returncode == 1
    assert f"--output '{folded / 'dem.TIF'}' is the input raster ('{source}')" in done.stderr
    assert "Outputs never overwrite inputs" in done.stderr
    watch.check()
