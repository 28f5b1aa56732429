"""A run on a Dask cluster (RunOptions.cluster; docs/scale-out.md): the output window cut into bands of rows
(bands.py), each a task that runs the engine on a worker process (worker.py) with the model's files shipped once
by the client, the bands written here into the run's staged outputs as they arrive (dispatch.py), after the
workers were checked (probe.py) on a connection this module opens and closes (connect.py).

A band computes exactly the tiles whose weights reach its rows and adds them in the same order as a run on one
machine (pipeline.band_tile_rows), so the outputs are the same files whatever the workers and the band height.
dask.distributed is optional: it is imported only when a run asks for a cluster.
"""
