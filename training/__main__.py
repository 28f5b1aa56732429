"""``python -m training <command> ...``: the companion training tools (run from the repository root).

Commands: geomorphons (landform labels from a DEM), data (chips, spatial split and statistics report),
tpi (rebuild the analytic landform model),
landforms, dem-anomaly, geology and ms-anomaly (train the shipped models), landforms-finetune (the landform
network fitted to an analyst's map), geology-ratios (the earlier ratio-trained geology U-Net), transfer-curve,
fit-anomaly (an anomaly model for any raster), abu (the ABU benchmark against RX),
segment, regress and anomaly (a model for any raster and labels, cross-validated against baselines).
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    from . import (abu, analytic_tpi, dem_anomaly, fit_anomaly, geology_cli, geology_spectral, geomorphons_io, landform_finetune,
                   landforms, ms_anomaly, pretrain_encoders, transfer_curve, transfer_goal)
    from .custom import anomaly as custom_anomaly, cli as custom
    from .data import cli

    return {"geomorphons": geomorphons_io.main, "data": cli.main, "tpi": analytic_tpi.main,
            "landforms": landforms.main, "landforms-finetune": landform_finetune.main,
            "dem-anomaly": dem_anomaly.main, "geology": geology_spectral.main, "geology-ratios": geology_cli.main,
            "ms-anomaly": ms_anomaly.main,
            "transfer-curve": transfer_curve.main, "fit-anomaly": fit_anomaly.main, "abu": abu.main,
            "pretrain-encoders": pretrain_encoders.main, "transfer-goal": transfer_goal.main,
            "segment": custom.segment_main, "regress": custom.regress_main, "anomaly": custom_anomaly.main}


def main(argv: Sequence[str]) -> int:
    commands = _commands()
    if not argv or argv[0] not in commands:
        print(f"usage: python -m training {{{','.join(commands)}}} ...\n" + " ".join(__doc__.splitlines()[2:8]), file=sys.stderr)
        return 2
    return int(commands[argv[0]](list(argv[1:])) or 0)


sys.exit(main(sys.argv[1:]))
