"""DeepStrata: run ONNX deep-learning models over raster layers (QGIS plugin entry point)."""


def classFactory(iface):  # noqa: N802 (the name QGIS looks for)
    """Called by QGIS (and qgis_process) to create the plugin; imports stay lazy so loading is cheap."""
    from .plugin import DeepStrataPlugin

    return DeepStrataPlugin(iface)
