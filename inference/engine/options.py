"""What a run is asked to do (RunOptions) and what it did (RunResult)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .card import ClassInfo
from .deepness import CardOverrides


@dataclass
class RunOptions:
    bands: Sequence[int] | None = None
    extent: Sequence[float] | None = None  # xmin, ymin, xmax, ymax in the raster's CRS
    device: str = "auto"
    tile_size: int | None = None
    batch_size: int | None = None
    overlap: int | None = None
    confidence_path: str | None = None
    threads: int = 0  # onnxruntime intra-op threads; 0 = its default
    chunk_width: int = 4096  # output columns processed at once; bounds memory on very wide rasters
    # Per model channel, raw value * input_scale + input_offset before the card's normalisation (e.g. a sensor's
    # digital numbers to the unit the model was trained on; see presets.py). None: the raw values.
    input_scale: Sequence[float] | None = None
    input_offset: Sequence[float] | None = None
    # A Byte raster on the input's grid (same size): 0 = masked (e.g. cloud; written as nodata), other values =
    # valid. None: only the input's own nodata. See workflows/sensors/masks.py for QA_PIXEL, BQA and SCL.
    valid_mask: str | None = None
    # What the user says about the model for this run: task and classes for a model without a card, and the
    # class threshold, median filter and output scaling (see deepness.CardOverrides).
    card: CardOverrides | None = None
    # Terrain models (card input.scale): the search distance in metres; None or 0: the model's default in cells.
    search_m: float | None = None
    # Models trained at one pixel size (card input.pixel_size_m): the most a raster's pixels may be split to reach
    # it (2: each pixel into at most 2 x 2). A 1 km DEM is never blown up 33x to a 30 m model unless asked.
    max_upsampling: float = 2.0
    # 'cog' (default): each raster output is a Cloud-Optimized GeoTIFF with internal overviews (nearest for classes,
    # average for scores), made from the streamed file at the commit; 'gtiff': the plain tiled GeoTIFF, no overviews.
    # With a caller's Staging, the staging's output_format rules (Staging(output_format=...)).
    output_format: str = "cog"
    # Only these rows (r0, r1) of the output window, written as a raster of that height at their place: a band of
    # a run cut into blocks (a cluster), equal to the same rows of the whole run. None: all rows.
    rows: tuple[int, int] | None = None
    # Only these columns (c0, c1) of the output window, whole column chunks of the plan (chunk_width): a block of a
    # run cut into blocks, equal to the same columns of the whole run. None: all columns.
    columns: tuple[int, int] | None = None
    # A Dask cluster that computes the run in bands of rows (cluster/): 'local' or 'local:N' (N worker processes on
    # this machine), a scheduler address ('tcp://host:8786'), or a scheduler file ('scheduler.json'). None: here.
    cluster: str | None = None
    # Rows per cluster task (rounded up to whole output blocks); None: chosen from the raster's size and workers.
    cluster_rows: int | None = None
    # How messages name the outputs: {"output": "OUTPUT", "confidence": "CONFIDENCE"} in Processing,
    # {"output": "--output", ...} on the command line.
    # {"input": "'dem.tif'"} names the input in messages where the run reads a copy of it (a resampled raster).
    labels: Mapping[str, str] = field(default_factory=dict)
    # The caller has checked the input against the model's domain (domain.py) and said the scale: neither is done
    # again (the run on a copy of the user's raster resampled by run_at_model_resolution; a cluster worker's band).
    input_checked: bool = False


@dataclass
class RunResult:
    output_path: str
    confidence_path: str | None
    style_path: str
    provider: str
    task: str
    classes: list[ClassInfo]
    width: int
    height: int
    tiles: int
    seconds: float
    bands: list[int]
    warnings: list[str] = field(default_factory=list)
    tile_size: int = 0
    overlap: int = 0
    batch_size: int = 0
    confidence_style_path: str = ""
    scale: str = ""  # terrain models: the search distance in metres and cells, one sentence
    valid_pixels: int = 0  # pixels with data that the model saw
    lost_pixels: int = 0  # of those, pixels that got no finite value (written as nodata)
    non_finite: int = 0  # NaN or infinite values the model returned
