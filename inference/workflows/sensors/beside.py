"""The files beside a scene: where its MTL and its QA / SCL mask are looked for."""
from __future__ import annotations

import os
from typing import Iterable, Iterator


def files_beside(files: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(folder, name) of every entry in the folders of `files` (a raster and the files a VRT stack reads), each
    folder once, names in sorted order; folders that cannot be listed are skipped."""
    for folder in dict.fromkeys(os.path.dirname(os.path.abspath(f)) for f in files):
        try:
            listing = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in listing:
            yield folder, name
