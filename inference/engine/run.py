"""run_model: a model over a raster into staged GeoTIFF outputs, here or on a Dask cluster (RunOptions.cluster)."""
from __future__ import annotations

import os

from .execute import execute, run_parameters
from .model import Model
from .options import RunOptions, RunResult
from .progress import Cancelled, Progress
from .staging import Staging

__all__ = ["run_model", "run_parameters"]


def run_model(model: Model | str | os.PathLike[str], input_path: str, output_path: str,
              options: RunOptions | None = None, on_progress: Progress | None = None,
              is_cancelled: Cancelled | None = None, staging: Staging | None = None) -> RunResult:
    """Run `model` over the raster at `input_path` and write `output_path` (GeoTIFF); see docs/architecture.md.

    Every destination is checked before any work. The outputs are staged: with `staging` the caller commits
    them together with its other outputs; without, they are committed here when the run is complete. With
    `options.cluster` the tiles are computed on that Dask cluster in bands of rows and the outputs are written
    here, equal to a run on this machine (docs/scale-out.md).
    """
    if options is not None and options.cluster:
        from .cluster.dispatch import ClusterFill

        with ClusterFill(options.cluster, options.cluster_rows, is_cancelled) as fill:
            return execute(model, input_path, output_path, options, on_progress, is_cancelled, staging, fill)
    return execute(model, input_path, output_path, options, on_progress, is_cancelled, staging)
