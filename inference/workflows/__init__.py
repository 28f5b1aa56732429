"""Workflow helpers on top of the engine: resampling to a model's pixel size and back, sensor band presets,
class statistics, polygons, anomaly masks and patches, and cheap facts about a raster before a run.
They import the engine; the engine never imports them.
"""
