"""Staged vector output: a whole file (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, CSV...), or one layer of an
existing GeoPackage whose other layers are kept.

A context manager like RasterWriter: a clean exit closes the dataset and hands its files to the staging (which
commits them with the run's other outputs); an exception drops them. A layer of an existing GeoPackage is written
into a copy of it (SQLite's online backup, so pages still in its write-ahead log come along), swapped in at the
commit; a second layer of the same GeoPackage in the same run goes into the same copy.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Sequence

from osgeo import gdal, ogr, osr

from .destinations import SHAPEFILE_PARTS, parse_vector_destination, vector_driver
from .errors import OutputError
from .staging import Staging
from .writer import release, write_failed

gdal.UseExceptions()
ogr.UseExceptions()


def _copy_sqlite(source: str, target: str) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


class VectorWriter:
    """One vector destination (a path, or QGIS's ``ogr:dbname='x.gpkg' table="name"`` for a layer of an existing
    GeoPackage). `layer()` creates the layer to fill; `layer_name` is used when the destination names none."""

    def __init__(self, staging: Staging, destination: str, layer_name: str) -> None:
        self.staging = staging
        self.path, layer = parse_vector_destination(destination)
        self.layer_name = layer or layer_name
        self.container = layer is not None
        self.driver = vector_driver(Path(self.path).suffix) or "GPKG"
        self.folder: str | None = None
        try:
            self.ds = self._open()
        except (RuntimeError, OSError, sqlite3.Error) as exc:
            raise write_failed(exc, self.path, 0, self.staging) from exc

    def _open(self) -> Any:
        if self.container:
            current = self.staging.current(self.path)
            if current != self.path:  # another layer of this GeoPackage is already staged in this run
                self.tmp = current
            else:
                self.tmp = self.staging.file(self.path)
                if os.path.exists(self.path):
                    _copy_sqlite(self.path, self.tmp)
            if os.path.exists(self.tmp):
                ds = ogr.Open(self.tmp, 1)
                for i in reversed(range(ds.GetLayerCount())):
                    if ds.GetLayer(i).GetName() == self.layer_name:
                        ds.DeleteLayer(i)
                return ds
            return ogr.GetDriverByName("GPKG").CreateDataSource(self.tmp)
        # Written in a folder of its own: formats such as Shapefile and MapInfo write several files of one name.
        self.folder = self.staging.folder(self.path)
        self.tmp = os.path.join(self.folder, Path(self.path).name)
        return ogr.GetDriverByName(self.driver).CreateDataSource(self.tmp)

    def layer(self, projection: str, geometry: int, fields: Sequence[tuple[str, int]]) -> Any:
        """A new layer of this destination with `fields` (name, OGR type) and the run's provenance."""
        srs = osr.SpatialReference(wkt=projection) if projection else None
        options = ["FID=fid"] if self.driver == "GPKG" else []
        try:
            layer = self.ds.CreateLayer(self.layer_name, srs, geometry, options)
            for name, kind in fields:
                layer.CreateField(ogr.FieldDefn(name, kind))
            for key, value in self.staging.metadata().items():
                layer.SetMetadataItem(key, value)
        except RuntimeError as exc:
            raise OutputError(f"Cannot create the layer '{self.layer_name}' in '{self.path}': {str(exc).strip()}. "
                              "Check the output path and format.") from exc
        return layer

    def __enter__(self) -> "VectorWriter":
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        closing = release(self, failure=value)  # closes and flushes the file
        if kind is not None:
            return
        if closing is not None:
            raise write_failed(closing, self.path, 0, self.staging, self.folder or self.tmp)
        if self.folder:
            target = Path(self.path)
            for name in sorted(os.listdir(self.folder)):
                self.staging.add(str(target.with_name(name)), os.path.join(self.folder, name))
            if self.driver == "ESRI Shapefile":  # parts an earlier shapefile of that name had and this one lacks
                for suffix in SHAPEFILE_PARTS:
                    part = target.with_suffix(suffix)
                    if not os.path.exists(os.path.join(self.folder, part.name)) and part.exists():
                        self.staging.add(str(part), None)
        else:
            self.staging.add(self.path, self.tmp)
        if self.driver == "GPKG":  # a write-ahead log of the replaced file must not be replayed over the new one
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    self.staging.add(self.path + suffix, None)
