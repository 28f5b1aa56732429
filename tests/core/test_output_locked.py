"""An output that another program holds open (Windows refuses to replace such a file): the run says which file,
why and what to do, and the earlier file, its sidecars and the folder are left exactly as they were.

Linux replaces open files, so the refusal is simulated: os.replace raises PermissionError(13) (what Python raises
for Windows' sharing violation) whenever the locked file is its source or its target.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from deepstrata.inference import OutputError, RunOptions, run_model
from deepstrata.inference.engine import staging
from ds_testing import models
from ds_testing.paths import DEM


def lock(monkeypatch: pytest.MonkeyPatch, locked: Path) -> list[tuple[str, str]]:
    """os.replace as Windows does it while another program has `locked` open; returns the refused calls."""
    real = os.replace
    refused: list[tuple[str, str]] = []

    def replace(src, dst, *args, **kwargs):
        if os.path.abspath(locked) in (os.path.abspath(src), os.path.abspath(dst)):
            refused.append((str(src), str(dst)))
            raise PermissionError(13, "The process cannot access the file because it is being used by another "
                                      "process", str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(staging.os, "replace", replace)
    return refused


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_locked_output_is_named_and_left_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = models.conv_segmenter(tmp_path / "models" / "seg.onnx", bands=1, classes=2, margin=1)
    out = tmp_path / "out"
    out.mkdir()
    run_model(model, str(DEM), str(out / "classes.tif"))  # the earlier result, open "elsewhere"
    before = snapshot(out)
    assert "classes.tif" in before and "classes.qml" in before

    refused = lock(monkeypatch, out / "classes.tif")
    with pytest.raises(OutputError) as caught:
        run_model(model, str(DEM), str(out / "classes.tif"), RunOptions(tile_size=64))

    message = str(caught.value)
    assert message.startswith(f"Cannot replace '{out / 'classes.tif'}': it is open in another program")
    assert "every earlier output is unchanged" in message
    assert "Close it in the program that has it open" in message and "write the output to another file" in message
    assert refused  # the commit did try to replace it
    assert snapshot(out) == before  # same files, same bytes: nothing half-written, no temporaries, no backups


def test_a_locked_sidecar_is_named_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The style beside the raster, open in an editor: the raster committed before it is put back as well."""
    target = tmp_path / "a.tif"
    target.write_bytes(b"earlier raster")
    (tmp_path / "a.qml").write_bytes(b"earlier style")
    before = snapshot(tmp_path)
    lock(monkeypatch, tmp_path / "a.qml")
    stage = staging.Staging()
    for name, content in (("a.tif", b"new raster"), ("a.qml", b"new style")):
        path = stage.file(str(tmp_path / name))
        Path(path).write_bytes(content)
        stage.add(str(tmp_path / name), path)

    with pytest.raises(OutputError, match=r"^Cannot replace '.*a\.qml': it is open in another program"):
        stage.commit()
    assert snapshot(tmp_path) == before


def test_other_failures_keep_their_own_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk is not a lock: the message says to check space and permissions, naming the target."""
    def replace(src, dst):
        raise OSError(28, "No space left on device", str(src))

    monkeypatch.setattr(staging.os, "replace", replace)
    stage = staging.Staging()
    path = stage.file(str(tmp_path / "b.tif"))
    Path(path).write_bytes(b"new")
    stage.add(str(tmp_path / "b.tif"), path)
    with pytest.raises(OutputError, match=r"^Could not move the outputs into place \('.*b\.tif': No space left"):
        stage.commit()
    assert os.listdir(tmp_path) == []
