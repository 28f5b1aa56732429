"""Sensors and products of multispectral scenes: recognising them (identify.py, catalog.py, scene.py, mtl.py),
their radiometry (products.py, calibration.py, relative.py), the units models take (units.py), and cloud and
quality masks (masks.py). QGIS-free; presets.py puts them together for a model."""
