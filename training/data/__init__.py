"""The training data pipeline (numpy + GDAL only): labels on the image grid, chips, spatial block splits,
augmentation, class weights and normalisation statistics."""
from .augment import augment_batch, dihedral, random_dihedral
from .chips import ChipSet, extract_chips, grid_positions
from .errors import DataError
from .grid import Grid
from .labels import Labels, class_mapping, image_grid, load_labels, rasterize_polygons, read_label_raster
from .splits import SPLITS, Split, block_keys, block_split, split_report
from .stats import BandStats, ClassWeights, band_stats, class_counts, class_weights, normalise

__all__ = [
    "augment_batch", "dihedral", "random_dihedral",
    "ChipSet", "extract_chips", "grid_positions",
    "DataError", "Grid",
    "Labels", "class_mapping", "image_grid", "load_labels", "rasterize_polygons", "read_label_raster",
    "SPLITS", "Split", "block_keys", "block_split", "split_report",
    "BandStats", "ClassWeights", "band_stats", "class_counts", "class_weights", "normalise",
]
