"""`python -m hashdemo evaluate hier|dcoh [--json PATH]`: the query split against the gallery.

Parameters are chosen on the val split; train and val never serve as test data. The result also goes
into the checkpoint's metrics.json under "test" (read by the app's Benchmarks), and its figures into
assets/.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hashdemo.app.report import format_tables, frontier, scaling
from hashdemo.checkpoints import CHECKPOINT_DIR
from hashdemo.evaluation.dcoh import evaluate_dcoh
from hashdemo.evaluation.hierarchical import evaluate_hier
from hashdemo.files import write_atomic

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EVALUATIONS = {"hier": evaluate_hier, "dcoh": evaluate_dcoh}


def save_figures(method: str, result: dict, assets: Path = ASSETS) -> None:
    if method == "hier":
        frontier(result).savefig(assets / "frontier.png", dpi=110)
        scaling(result).savefig(assets / "scaling.png", dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hashdemo evaluate", description=__doc__)
    parser.add_argument("method", choices=sorted(EVALUATIONS))
    parser.add_argument("--json", type=Path, help="where to write the full result")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = EVALUATIONS[args.method](args.checkpoints)
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
    metrics_path = args.checkpoints / args.method / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["test"] = result
    write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    save_figures(args.method, result)
    print(format_tables(args.method, result))


if __name__ == "__main__":
    main()
