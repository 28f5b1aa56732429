"""The DeepStrata Processing provider: one algorithm per module, the engine imported lazily."""
