"""The training rasters: bands chosen by number or name, every raster brought onto the first one's CRS and pixel
size (warped copies, reported), and each read whole through the plugin's own reader (NaN = invalid)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from osgeo import gdal

from deepstrata.inference.engine.georef import ground_pixel_size
from deepstrata.inference.engine.raster import RasterSource

from ..data.grid import Grid, grid_of, open_raster
from .findings import Findings, Refused

RELATIVE_TOLERANCE = 1e-3  # pixel sizes closer than this share are the same resolution


@dataclass
class Scene:
    """One training raster as the model sees it: ``image`` (C, H, W) float32, NaN where any band is invalid."""

    path: str                   # as given on the command line
    source: str                 # the file read: ``path``, or a copy warped onto the first raster's CRS and pixels
    bands: tuple[int, ...]
    band_names: list[str]
    band_units: list[str]
    grid: Grid
    pixel_m: Optional[float]    # mean ground pixel size in metres (None without a CRS)
    image: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.image).all(axis=0)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[2])


def band_list(spec: Optional[str], ds: gdal.Dataset, path: str) -> tuple[int, ...]:
    """1-based bands from ``--bands``: numbers, or names matched (case-insensitively) against the band
    descriptions; all bands by default."""
    count = ds.RasterCount
    if not spec:
        return tuple(range(1, count + 1))
    names = {ds.GetRasterBand(i).GetDescription().strip().lower(): i for i in range(1, count + 1)}
    chosen = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        if token.isdigit():
            if not 1 <= int(token) <= count:
                raise Refused(f"{path} has bands 1..{count}; there is no band {token}. Fix --bands.")
            chosen.append(int(token))
        elif token.lower() in names:
            chosen.append(names[token.lower()])
        else:
            described = [ds.GetRasterBand(i).GetDescription() or f"(band {i} has no name)" for i in range(1, count + 1)]
            raise Refused(f"{path} has no band named {token!r}; its bands are {described}. Give numbers or these "
                          "names in --bands.")
    return tuple(chosen)


def _names(ds: gdal.Dataset, bands: Sequence[int]) -> tuple[list[str], list[str]]:
    names, units = [], []
    for b in bands:
        band = ds.GetRasterBand(b)
        name = band.GetDescription().strip() or f"band {b}"
        names.append(name if name not in names else f"{name} (band {b})")
        units.append(band.GetUnitType() or "")
    return names, units


def _same_crs(a: Grid, b: Grid) -> bool:
    if not a.wkt or not b.wkt:
        return not a.wkt and not b.wkt
    return bool(a.srs().IsSame(b.srs()))


def _close(a: float, b: float) -> bool:
    return abs(abs(a) - abs(b)) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def _crs_name(grid: Grid) -> str:
    if not grid.wkt:
        return "no CRS"
    srs = grid.srs()
    code = srs.GetAuthorityCode(None)
    return f"EPSG:{code}" if code else (srs.GetName() or "a custom CRS")


def _warp(path: str, first: Grid, target: Path) -> str:
    ds = open_raster(path)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    gdal.Warp(str(target), ds, format="GTiff", dstSRS=first.wkt or None, xRes=abs(first.geotransform[1]),
              yRes=abs(first.geotransform[5]), resampleAlg="bilinear", outputType=gdal.GDT_Float32,
              srcNodata=nodata, dstNodata=float("nan"), targetAlignedPixels=False)
    return str(target)


def align(paths: Sequence[str], workdir: Path, findings: Findings) -> list[str]:
    """The file to read for each raster: itself when it shares the first raster's CRS and pixel size, else a
    copy warped (bilinear) onto them in ``workdir``; each warp is a finding."""
    first = grid_of(open_raster(paths[0]))
    sources = [paths[0]]
    for index, path in enumerate(paths[1:], start=1):
        grid = grid_of(open_raster(path))
        same_crs = _same_crs(first, grid)
        same_size = _close(grid.geotransform[1], first.geotransform[1]) and \
            _close(grid.geotransform[5], first.geotransform[5])
        if same_crs and same_size:
            sources.append(path)
            continue
        target = workdir / f"aligned_{index}_{Path(path).stem}.tif"
        sources.append(_warp(path, first, target))
        if not same_crs:
            findings.add("crs", f"{path} is in {_crs_name(grid)}, the first raster in {_crs_name(first)}: "
                                f"reprojected on the fly (bilinear) to the first raster's CRS and pixel size",
                         1, "reprojected", raster=path, crs=_crs_name(grid), to=_crs_name(first))
        if not same_size:
            findings.add("resolution", f"{path} has {abs(grid.geotransform[1]):g} x {abs(grid.geotransform[5]):g} "
                                       f"pixels, the first raster {abs(first.geotransform[1]):g} x "
                                       f"{abs(first.geotransform[5]):g}: resampled (bilinear) to the first "
                                       "raster's pixel size (the model works at one pixel size)",
                         1, "resampled", raster=path, pixel=abs(grid.geotransform[1]),
                         to=abs(first.geotransform[1]))
    return sources


def read_scene(path: str, source: str, bands_spec: Optional[str], band_count: Optional[int]) -> Scene:
    """Read ``source`` (the aligned file for ``path``) whole, with the bands of ``--bands``."""
    ds = open_raster(source)
    bands = band_list(bands_spec, open_raster(path), path)  # by number or by the given file's band names
    if band_count is not None and len(bands) != band_count:
        raise Refused(f"{path} gives {len(bands)} bands but the first raster gave {band_count}: every raster must "
                      "give the same bands (use --bands).")
    grid = grid_of(ds)
    image = np.empty((len(bands), grid.height, grid.width), dtype=np.float32)
    valid = np.empty((grid.height, grid.width), dtype=bool)
    RasterSource(source, ds, list(bands)).read_rows(0, 0, image, valid)
    image[:, ~valid] = np.nan
    names, units = _names(open_raster(path), bands)
    sizes = ground_pixel_size(ds)
    pixel = (sizes[0] + sizes[1]) / 2 if sizes else None
    return Scene(path, source, bands, names, units, grid, pixel, image)


def read_scenes(paths: Sequence[str], bands_spec: Optional[str], workdir: Path, findings: Findings) -> list[Scene]:
    sources = align(paths, workdir, findings)
    scenes: list[Scene] = []
    for path, source in zip(paths, sources):
        scenes.append(read_scene(path, source, bands_spec, len(scenes[0].bands) if scenes else None))
    return scenes


def provenance(path: str, limit: int = 512 * 2 ** 20) -> dict[str, Any]:
    """Name, size and SHA-256 (files up to ``limit`` bytes) of an input file, for the card and the report."""
    info: dict[str, Any] = {"file": os.path.basename(path)}
    if os.path.isfile(path):
        info["bytes"] = os.path.getsize(path)
        if info["bytes"] <= limit:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(2 ** 20), b""):
                    digest.update(chunk)
            info["sha256"] = digest.hexdigest()
    return info


def describe(scene: Scene) -> dict[str, Any]:
    info = provenance(scene.path)
    info.update({"size_px": [scene.grid.width, scene.grid.height], "crs": _crs_name(scene.grid),
                 "pixel_size_m": None if scene.pixel_m is None else round(scene.pixel_m, 4),
                 "bands": [f"{b}: {n}" for b, n in zip(scene.bands, scene.band_names)],
                 "valid_pixels": int(scene.valid.sum())})
    if scene.source != scene.path:
        info["read_as"] = "a copy warped onto the first raster's CRS and pixel size"
    return info


crs_name = _crs_name
