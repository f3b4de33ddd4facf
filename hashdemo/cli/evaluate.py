"""`python -m hashdemo evaluate hier|dcoh [--json PATH]`: the query split against the gallery.

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

from hashdemo.data.imported import DatasetError, load_dataset
from hashdemo.evaluation.dcoh import evaluate_dcoh
from hashdemo.evaluation.hierarchical import evaluate_hier
from hashdemo.evaluation.imported import checkpoints_of, evaluate_dcoh_imported, evaluate_hier_imported
from hashdemo.evaluation.report import format_tables, frontier, scaling
from hashdemo.model.checkpoints import CheckpointError
from hashdemo.storage.files import write_atomic
from hashdemo.storage.locations import CHECKPOINT_DIR

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EVALUATIONS = {"hier": evaluate_hier, "dcoh": evaluate_dcoh}
IMPORTED = {"hier": evaluate_hier_imported, "dcoh": evaluate_dcoh_imported}


def save_figures(method: str, result: dict, assets: Path = ASSETS) -> None:
    if method == "hier":
        frontier(result).savefig(assets / "frontier.png", dpi=110)
        scaling(result).savefig(assets / "scaling.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashdemo evaluate", description=__doc__)
    parser.add_argument("method", choices=sorted(EVALUATIONS))
    parser.add_argument("--json", type=Path, help="where to write the full result")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--dataset", default="outfits", help="outfits, or the name of an imported folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.dataset != "outfits":
        try:
            dataset = load_dataset(args.dataset)
            result = IMPORTED[args.method](dataset)
        except (DatasetError, CheckpointError) as error:
            print(f"hashdemo evaluate: {error}", file=sys.stderr)
            return 2
        record(args.method, result, checkpoints_of(dataset), args.json)
        return 0
    result = EVALUATIONS[args.method](args.checkpoints)
    record(args.method, result, args.checkpoints, args.json)
    save_figures(args.method, result)
    return 0


def record(method: str, result: dict, checkpoints: Path, json_path: Path | None) -> None:
    """The result into --json, into the checkpoint's metrics.json (the app's Benchmarks), and printed."""
    if json_path:
        write_atomic(json_path, json.dumps(result, indent=2) + "\n")
    metrics_path = checkpoints / method / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["test"] = result
    write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(format_tables(method, result))


if __name__ == "__main__":
    main()
