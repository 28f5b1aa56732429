"""The DASK parameter (issue #15): Run model and a workflow on a local Dask cluster from Processing write what they
write without one, and say where they ran; a cluster that cannot be reached fails with a message, no output."""
from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsProcessingException

from qgis_support import RecordingFeedback, read


def run(alg: str, parameters: dict, feedback=None) -> dict:
    import processing

    return processing.run(alg, parameters, feedback=feedback)


def test_run_model_on_a_local_cluster_equals_this_machine(ds_provider, dem_segmenter, dem, tmp_path):
    here = run("deepstrata:runmodel", {"INPUT": str(dem), "MODEL": str(dem_segmenter),
                                       "OUTPUT": str(tmp_path / "here.tif")})
    feedback = RecordingFeedback()
    there = run("deepstrata:runmodel", {"INPUT": str(dem), "MODEL": str(dem_segmenter), "DASK": "local:2",
                                        "OUTPUT": str(tmp_path / "cluster.tif")}, feedback)
    a, b = read(here["OUTPUT"]), read(there["OUTPUT"])
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]
    assert there["PROVIDER"] == "CPUExecutionProvider on a Dask cluster (1 task)"
    assert "on a Dask cluster" in "\n".join(feedback.infos)


def test_the_landform_workflow_on_a_local_cluster(ds_provider, dem, tmp_path):
    here = run("deepstrata:classifylandforms", {"INPUT": str(dem), "OUTPUT": str(tmp_path / "here.tif")})
    there = run("deepstrata:classifylandforms", {"INPUT": str(dem), "OUTPUT": str(tmp_path / "cluster.tif"),
                                                 "DASK": "local:2"})
    np.testing.assert_array_equal(read(here["OUTPUT"])[0], read(there["OUTPUT"])[0])


def test_an_unreachable_cluster_is_a_message_and_writes_nothing(ds_provider, dem_segmenter, dem, tmp_path,
                                                                monkeypatch):
    from deepstrata.inference.engine.cluster import connect

    monkeypatch.setattr(connect, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(QgsProcessingException, match="Could not reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run("deepstrata:runmodel", {"INPUT": str(dem), "MODEL": str(dem_segmenter), "DASK": "tcp://127.0.0.1:9",
                                    "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


def test_a_port_that_is_not_a_scheduler_is_a_message(ds_provider, dem_segmenter, dem, tmp_path, monkeypatch):
    import socket

    from deepstrata.inference.engine.cluster import connect

    monkeypatch.setattr(connect, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as silent:  # listens, never answers: a client's handshake times out
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(QgsProcessingException, match=f"Could not reach the Dask scheduler at '{address}'"):
            run("deepstrata:runmodel", {"INPUT": str(dem), "MODEL": str(dem_segmenter), "DASK": address,
                                        "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()
