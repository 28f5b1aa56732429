"""``python -m training <command> ...``: the companion training tools (run from the repository root).

Commands: geomorphons (landform labels from a DEM), data (chips, spatial split and statistics report),
tpi (rebuild the analytic landform model),
landforms and dem-anomaly (train the shipped landform CNN and terrain anomaly autoencoder).
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    from . import analytic_tpi, dem_anomaly, geomorphons, landforms
    from .data import cli

    return {"geomorphons": geomorphons.main, "data": cli.main, "tpi": analytic_tpi.main,
            "landforms": landforms.main, "dem-anomaly": dem_anomaly.main}


def main(argv: Sequence[str]) -> int:
    commands = _commands()
    if not argv or argv[0] not in commands:
        print(f"usage: python -m training {{{','.join(commands)}}} ...\n" + " ".join(__doc__.splitlines()[2:5]), file=sys.stderr)
        return 2
    return int(commands[argv[0]](list(argv[1:])) or 0)


sys.exit(main(sys.argv[1:]))
