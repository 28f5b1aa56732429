"""One command per task on any raster and any labels: ``python -m training segment`` and ``regress``.

The pieces, one idea per module: ``inputs`` (rasters, bands, alignment), ``vector_labels`` and
``raster_labels`` (label sources audited on the image grid), ``targets`` (classes or values, the traps),
``defaults`` (chip, block, network and schedule sized from the data), ``folds`` (spatial k-fold over blocks,
chips), ``encoders`` and ``onnx_encoder`` (``--from``), ``network`` (build, train, predict), ``features`` and
``baselines`` (majority / mean and a per-pixel random forest), ``cv`` (the folds x seeds loop), ``paired``
(sign and Wilcoxon tests), ``metrics``, ``card``, ``report`` and ``run`` / ``cli`` (the commands).
"""
