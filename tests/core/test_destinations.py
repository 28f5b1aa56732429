"""The destination checks' comparisons where the catalogue cannot reach them on this machine: file systems that
fold case (no case-folding mount is possible here), hard links and symlinks, layers of one GeoPackage."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from deepstrata.inference.engine import destinations
from deepstrata.inference.engine.destinations import Destination, Read, check_destinations, parse_vector_destination
from deepstrata.inference.engine.errors import DestinationError


def test_case_is_folded_where_the_file_system_folds_it(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "Dem.tif"
    source.write_bytes(b"x")
    check_destinations([Destination(str(tmp_path / "DEM.TIF"), "OUTPUT")], [Read(str(source), "the input raster")])
    monkeypatch.setattr(destinations, "_folds_case", lambda folder: True)
    with pytest.raises(DestinationError, match=r"OUTPUT '.*DEM.TIF' is the input raster \('.*Dem.tif'\)"):
        check_destinations([Destination(str(tmp_path / "DEM.TIF"), "OUTPUT")], [Read(str(source), "the input raster")])
    with pytest.raises(DestinationError, match="OUTPUT and CONFIDENCE are the same file"):
        check_destinations([Destination(str(tmp_path / "a.tif"), "OUTPUT"),
                            Destination(str(tmp_path / "A.tif"), "CONFIDENCE")])


def test_the_probe_tells_a_folding_file_system_from_this_one(tmp_path: Path) -> None:
    destinations._folds_case.cache_clear()
    assert destinations._folds_case(str(tmp_path)) is False  # ext4/tmpfs here: 'a' and 'A' are two names
    assert not [p for p in tmp_path.iterdir()]  # the probe file is gone


def test_links_are_resolved(tmp_path: Path) -> None:
    source = tmp_path / "dem.tif"
    source.write_bytes(b"x")
    os.link(source, tmp_path / "hard.tif")
    (tmp_path / "soft.tif").symlink_to(source)
    for name in ("hard.tif", "soft.tif"):
        with pytest.raises(DestinationError, match="is the input raster"):
            check_destinations([Destination(str(tmp_path / name), "--output")], [Read(str(source), "the input raster")])


def test_two_layers_of_one_geopackage_are_allowed_one_layer_twice_is_not(tmp_path: Path) -> None:
    gpkg = str(tmp_path / "out.gpkg")
    check_destinations([Destination(gpkg, "STATISTICS", "table", "stats"), Destination(gpkg, "VECTORIZE", "vector",
                                                                                          "polygons")])
    with pytest.raises(DestinationError, match="STATISTICS and VECTORIZE are the same layer 'x' of"):
        check_destinations([Destination(gpkg, "STATISTICS", "table", "x"), Destination(gpkg, "VECTORIZE", "vector",
                                                                                       "x")])
    with pytest.raises(DestinationError, match="STATISTICS and VECTORIZE are the same file"):
        check_destinations([Destination(gpkg, "STATISTICS", "table"), Destination(gpkg, "VECTORIZE", "vector", "x")])


@pytest.mark.parametrize("value,expected", [
    ("/p/x.gpkg", ("/p/x.gpkg", None)),
    ("ogr:dbname='/p/x.gpkg' table=\"polys\" (geom)", ("/p/x.gpkg", "polys")),
    ("ogr:dbname='/p/it''s.gpkg' table=\"a \"\"b\"\"\"", ("/p/it's.gpkg", 'a "b"')),
    ("/p/x.gpkg|layername=stats", ("/p/x.gpkg", "stats")),
])
def test_vector_destinations_as_qgis_writes_them(value: str, expected: tuple) -> None:
    assert parse_vector_destination(value) == expected
