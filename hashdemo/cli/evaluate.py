"""`python -m hashdemo evaluate hier|dcoh|million [--json PATH]`: the query split against the gallery.

`million` runs the million's part of `hier` on its own (a million real gallery codes, encoded by
`python -m hashdemo gallery-codes --million`, an hour here) and merges it into the hier result.

Parameters are chosen on the val split; train and val never serve as test data. The result also goes
into the checkpoint's metrics.json under "test" (read by the app's Benchmarks), and its figures into
assets/.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hashdemo.data.dataset import OUTFITS, open_dataset
from hashdemo.data.imported import DatasetError
from hashdemo.evaluation.dcoh import evaluate_dcoh
from hashdemo.evaluation.figures import FIGURE_DATA, write_figures
from hashdemo.evaluation.hier_million import evaluate_million, merge_million
from hashdemo.evaluation.hierarchical import evaluate_hier
from hashdemo.evaluation.tables import format_tables
from hashdemo.model.checkpoints import CheckpointError
from hashdemo.model.device import DeviceError, add_device_option, apply_device_option
from hashdemo.retrieval.million import MillionIncomplete
from hashdemo.storage.files import write_atomic

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EVALUATIONS = {"hier": evaluate_hier, "dcoh": evaluate_dcoh, "million": evaluate_million}
RECORDED_AS = {"million": "hier"}  # an evaluation whose result goes into another's record


def save_figures(method: str, result: dict, assets: Path = ASSETS) -> None:
    """The README's figures: frontier.png and scaling.png after hier, dcoh_pca.png after dcoh."""
    write_figures(method, result, assets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashdemo evaluate", description=__doc__)
    parser.add_argument("method", choices=sorted(EVALUATIONS))
    parser.add_argument("--json", type=Path, help="where to write the full result")
    parser.add_argument(
        "--checkpoints", type=Path, help="default: the dataset's own (checkpoints/ for outfits)"
    )
    parser.add_argument("--dataset", default=OUTFITS, help="outfits, or the name of an imported data set")
    add_device_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        apply_device_option(args)
        dataset = open_dataset(args.dataset)
        checkpoints = args.checkpoints or dataset.checkpoints
        result = EVALUATIONS[args.method](dataset, checkpoints)
        method = RECORDED_AS.get(args.method, args.method)
        if args.method == "million":
            result = merge_million(recorded(checkpoints, method), result)
    except (DatasetError, CheckpointError, MillionIncomplete, DeviceError) as error:
        print(f"hashdemo evaluate: {error}", file=sys.stderr)
        return 2
    record(method, result, checkpoints, args.json)
    if dataset.kind.shipped:  # the README's figures are the shipped set's
        save_figures(method, result)
    return 0


def recorded(checkpoints: Path, method: str) -> dict:
    """The result an earlier `evaluate METHOD` recorded in the checkpoint's metrics.json."""
    metrics = json.loads((checkpoints / method / "metrics.json").read_text())
    if "test" not in metrics:
        raise CheckpointError(f"run `python -m hashdemo evaluate {method}` first")
    return metrics["test"]


def record(method: str, result: dict, checkpoints: Path, json_path: Path | None) -> None:
    """The result into --json, into the checkpoint's metrics.json (the app's Benchmarks), and printed
    (without the figures' own data, which stays in memory)."""
    result = {key: value for key, value in result.items() if key not in FIGURE_DATA}
    if json_path:
        write_atomic(json_path, json.dumps(result, indent=2) + "\n")
    metrics_path = checkpoints / method / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["test"] = result
    write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(format_tables(method, result))


if __name__ == "__main__":
    main()
