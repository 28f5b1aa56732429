"""The real sample rasters in tests/data (see each folder's PROVENANCE.txt)."""
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
DEM = DATA / "bigtujunga" / "bigtujunga_320x240.tif"  # SRTM 30 m, Int16, nodata 32767, EPSG:32611
LANDSAT = DATA / "landsat8_florida" / "l8_B4B3B2_256.tif"  # Landsat 8 B4, B3, B2, UInt16 DN, EPSG:32616
