"""Model building and training companions to DeepStrata (not shipped in the plugin zip)."""
