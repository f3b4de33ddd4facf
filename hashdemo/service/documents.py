"""A search as plain JSON-able data: what `python -m hashdemo query search` prints and what the app's
`/search_json` endpoint returns (the ranking without a single picture: it costs what the search costs)."""

from __future__ import annotations

import numpy as np

from hashdemo.service.answers import Ranking, SearchAnswer
from hashdemo.service.relevance import RELEVANCE


def bit_string(bits: np.ndarray) -> str:
    return "".join(str(int(b)) for b in np.asarray(bits).ravel())


def ranking_rows(engine, ranking: Ranking, top: int, relevant_as: str = "shares_a_label") -> list[dict]:
    """The first `top` results: gallery id, label set, distance (and the global distance of a re-rank),
    and whether each is relevant (`relevant_as` says how: shares a label, or is the target set)."""
    rows = []
    for position in range(min(top, len(ranking.ids))):
        i = int(ranking.ids[position])
        row = {"gallery_id": i, "labels": engine.label_text(engine.gallery_labels[i])}
        row["distance"] = int(ranking.distances[position])
        if ranking.global_distances is not None:
            row["global_distance"] = int(ranking.global_distances[position])
        if ranking.relevant is not None:
            row[relevant_as] = bool(ranking.relevant[position])
        rows.append(row)
    return rows


def search_document(engine, answer: SearchAnswer, params: tuple[float, int, int], top: int) -> dict:
    """One search: the parameters, the query's codes and selected bits, both rows' top results and, for a
    query its relevance rule can judge, each row's P@10, AP@100 and AP over its K."""
    theta, top_l, n_coarse = params
    encoded, labels = answer.query.encoded, answer.query.labels
    rows = {"global_only": answer.coarse, "reranked": answer.reranked}
    rule = RELEVANCE[answer.relevance]
    document = {
        "theta": theta,
        "L": top_l,
        "K": n_coarse,
        "query_labels": None if labels is None else engine.label_text(labels),
        "global_code": bit_string(encoded.global_bits[0]),
        "local_code": bit_string(encoded.local_bits[0]),
        "selected_bits": answer.attention.selected.tolist(),
        "out_of_domain": bool(answer.out_of_domain),
        "relevance": f"{answer.relevance}: {rule.words}",
        **{name: ranking_rows(engine, row, top, rule.key) for name, row in rows.items()},
    }
    figures = {name: engine.answer_figures(answer, row) for name, row in rows.items()}
    if all(value is not None for value in figures.values()):
        document["figures"] = {
            name: {"shown": f.shown, "p_at_shown": f.precision, "ap@100": f.ap_at_100, "ap": f.ap}
            for name, f in figures.items()
        }
    return document
