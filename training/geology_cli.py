"""``python -m training geology``: the command line of the geology recipe (training.geology trains,
training.geology_eval scores and reports, training.geology_readme writes the report's README)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Optional, Sequence

import torch

from .export import export_model
from .geology import OUTPUT, REPORTS, SCENES, Recipe, fit, prepare
from .geology_eval import card, evaluate_and_report
from .geology_readme import readme
from .workflow import command_line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training geology", description=__doc__.splitlines()[0])
    p.add_argument("--output", default=OUTPUT, help=f"the .onnx to write (default {OUTPUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    for item in fields(Recipe):
        default = getattr(Recipe, item.name)
        p.add_argument("--" + item.name.replace("_", "-"), type=type(default), default=default,
                       help=f"(default {default})")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    started = time.perf_counter()
    argv = list(argv or [])
    args = vars(_parser().parse_args(argv))
    output, reports = args.pop("output"), Path(args.pop("reports"))
    recipe = replace(Recipe(), **args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(recipe.threads)
    command = command_line(["geology", *argv])
    with tempfile.TemporaryDirectory(prefix="deepstrata-geology-") as name:
        folder = Path(name)
        prepared = prepare(recipe, SCENES, folder)
        trained = fit(prepared, recipe)
        # Export first without metrics so the engine scores the very file that ships, then again with them.
        draft = folder / "draft.onnx"
        export_model(trained.model, card(recipe, prepared, trained, {}, command), draft, sizes=(64, 128))
        metrics = evaluate_and_report(draft, recipe, prepared, trained, reports, command, folder)
        path = export_model(trained.model, card(recipe, prepared, trained, metrics, command), output,
                            sizes=(64, 128))
    document = json.loads((reports / "geology.json").read_text(encoding="utf-8"))
    (reports / "README.md").write_text(readme(document, path, time.perf_counter() - started), encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s; "
          f"held-out {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
