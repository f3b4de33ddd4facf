"""The result as files a researcher can cite, named for what they hold: JSON (one document: the query's
fields and every row) and CSV (one line per result: the query's short fields, then the result's; the
codes, the figures and other nested fields are the JSON's only, not repeated on every line).

A search's file holds the query's codes H_g and H_l, the selected bits, theta, L, K and the box, the
first 100 results of both rows (P@10 and AP@100 recompute from it; its name says so) with each one's
gallery id, both distances by name (d_g on the global code, d_L on the L selected bits), its labels and
its relevance (shares a label; holds the attended item, when the query's items are known), each row's
per-query figures and the view's link; a composition's holds the slots, the operators, each slot's code
and the composed code instead of the attention.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

import numpy as np

from hashdemo.app.picture_files import PictureFiles
from hashdemo.service.answers import Ranking, RowFigures


def code_text(bits: np.ndarray) -> str:
    """A 0/1 code as a string of digits, bit 0 first."""
    return "".join(str(int(b)) for b in bits)


def source_name(source: tuple[str, int] | None) -> str:
    """ "query-12", "gallery-5", or "upload" for an image that is not a dataset image."""
    return "upload" if source is None else f"{source[0]}-{source[1]}"


def row_records(engine, rows: dict[str, Ranking], relevance: str) -> list[dict]:
    """One record per tile of every row: rank, gallery id, both distances by name, labels, relevance."""
    return [
        {
            "row": name,
            "rank": rank + 1,
            "gallery_id": int(gallery_id),
            **distances(name, ranking, rank),
            "labels": engine.label_text(engine.gallery_labels[gallery_id]),
            relevance: None if ranking.relevant is None else bool(ranking.relevant[rank]),
        }
        for name, ranking in rows.items()
        for rank, gallery_id in enumerate(ranking.ids)
    ]


def distances(row: str, ranking: Ranking, rank: int) -> dict:
    """The distances that placed a tile, named: d_g (global code) and, in the re-ranked row, d_L."""
    if ranking.global_distances is not None:  # the re-rank: ordered by d_L, ties by d_g
        return {"d_L": int(ranking.distances[rank]), "d_g": int(ranking.global_distances[rank])}
    name = "d_g" if row == "global_only" else "d"  # a composition's rows: distance to the composed code
    return {name: ranking.distances[rank].item()}


def figures_record(figures: dict[str, RowFigures | None]) -> dict:
    return {row: None if value is None else asdict(value) for row, value in figures.items()}


def write(files: PictureFiles, document: dict, records: list[dict], stem: str) -> tuple[str, str]:
    """The JSON document and the CSV lines (each line: the document's scalar fields, then its tile) as
    files named `stem`.json and `stem`.csv."""
    text = json.dumps({**document, "rows": records}, indent=2).encode()
    scalars = {key: value for key, value in document.items() if short(value)}
    lines = io.StringIO()
    fields = [*scalars, *dict.fromkeys(key for record in records for key in record)]
    writer = csv.DictWriter(lines, fieldnames=fields)
    writer.writeheader()
    writer.writerows({**scalars, **record} for record in records)
    return files.named(text, f"{stem}.json"), files.named(lines.getvalue().encode(), f"{stem}.csv")


def short(value) -> bool:
    """Whether a document field goes on every CSV line: a number, or a string up to a sentence (a code,
    a list or a nested record stays in the JSON)."""
    return (
        value is None
        or isinstance(value, int | float)
        or (isinstance(value, str) and len(value) <= 80 and not set(value) <= {"0", "1"})
    )
