"""StripReader: overlapping strips, each raster row read once in whole block rows, mirrored beyond the edges."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deepstrata.inference.engine.raster import RasterSource, open_raster
from deepstrata.inference.engine.strips import StripReader
from ds_testing import rasters


def test_strips_equal_direct_reads_and_rows_are_read_once_per_block_row(tmp_path: Path) -> None:
    array = np.arange(3 * 300 * 70, dtype=np.float32).reshape(3, 300, 70)
    path = rasters.write_raster(tmp_path / "r.tif", array, options=("TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                                                                    "COMPRESS=DEFLATE"))
    source = RasterSource(str(path), open_raster(str(path)), [3, 1])
    calls: list[tuple[int, int]] = []
    real = source.read_rows
    source.read_rows = lambda y0, x0, data, valid: (calls.append((y0, y0 + len(valid))),  # type: ignore
                                                    real(y0, x0, data, valid))
    reader = StripReader(source, -4, 78, 60)  # 4 mirrored columns on each side
    mirrored = np.pad(array[[2, 0]], ((0, 0), (4, 4), (4, 4)), mode="reflect")
    for y in (-4, 46, 96, 146, 196, 244):  # strips of 60 rows (a crop of 4 around 52), the last shifted back
        data, valid = reader.read(y, 60)
        np.testing.assert_array_equal(data, mirrored[:, y + 4:y + 64])
        assert data.shape == (2, 60, 78) and valid.all()
        data[:] = -1  # callers normalise in place: that must not reach rows kept for the next strip
    assert calls == [(0, 64), (64, 128), (128, 192), (192, 256), (256, 300)]
