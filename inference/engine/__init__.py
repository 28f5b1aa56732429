"""The generic engine: models and their cards, execution providers, the run plan and tiling, streamed reading,
staged writing, task heads and typed errors. It knows nothing of DEMs, sensors or workflows (those are
``deepstrata.inference.workflows``, built on it) and never imports them.
"""
