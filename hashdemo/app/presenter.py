"""Engine answers as the components' values, keyed by output name: pictures as files, captions, text.

The presenter formats; it computes nothing about relevance or rankings (the engine's answers carry
them). Output names are the API's: /search returns SEARCH_OUTPUTS, /compose COMPOSE_OUTPUTS, in order.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from hashdemo.app import pictures
from hashdemo.app.picture_files import PictureFiles
from hashdemo.app.state import SearchState
from hashdemo.evaluation.tables import in_words, markdown_table
from hashdemo.service.answers import Comparison, ComposeAnswer, Ranking, SearchAnswer
from hashdemo.service.engine import Engine

SHOWN_RESULTS = 10  # tiles per result row
SHOWN_MAPS = 12  # activation maps shown, highest score first
COARSE_TITLE = "Global code only (top-K)"
RERANK_TITLE = "Re-ranked on the L attention bits"
SEARCH_OUTPUTS = (
    "cam",
    "region",
    "maps",
    "scores",
    "strip",
    "info",
    "coarse_header",
    "coarse",
    "rerank_header",
    "reranked",
)
COMPOSE_OUTPUTS = ("summary", "composed", "bitwise")


class Presenter:
    def __init__(self, engine: Engine, files: PictureFiles):
        self.engine, self.files = engine, files
        # a gallery tile's picture depends only on (id, frame): encode each one once, but store it
        # on every use, which renews the file (or redraws it if the disk budget removed it)
        # (512 small PNGs keep the cache to a few MB)
        self.tile_png = functools.lru_cache(maxsize=512)(self._tile_png)
        self.tile_ids: dict[
            str, int
        ] = {}  # tile picture file name -> gallery id, for tiles dragged to a slot

    # ------------------------------------------------------------------ tiles and rows

    def _tile_png(self, gallery_id: int, relevant: bool | None) -> bytes:
        return self.files.png(pictures.framed(self.engine.gallery_images[gallery_id], relevant))

    def tile_picture(self, gallery_id: int, relevant: bool | None) -> str:
        path = self.files.store(self.tile_png(gallery_id, relevant))
        self.tile_ids[Path(path).name] = gallery_id
        return path

    def source_image(self, path: str) -> str:
        """The file to put in a slot for a dropped picture: a result tile becomes its gallery image
        (unframed, full size, so its labels are known); any other picture stays as it is."""
        gallery_id = self.tile_ids.get(Path(path).name)
        return path if gallery_id is None else self.files(self.engine.gallery_images[gallery_id])

    def tiles(self, ranking: Ranking, captions: list[str]) -> list[tuple[str, str]]:
        relevant = [None] * len(ranking.ids) if ranking.relevant is None else ranking.relevant.tolist()
        return [
            (
                self.tile_picture(int(i), r),
                f"{self.engine.label_text(self.engine.gallery_labels[i])} · {caption}",
            )
            for i, caption, r in zip(ranking.ids, captions, relevant, strict=True)
        ]

    def result_row(self, title: str, ranking: Ranking, captions: list[str]) -> tuple[str, list]:
        """A header with the row's P@10 (when the query's labels are known) and its framed tiles."""
        p10 = ranking.precision_at(SHOWN_RESULTS)
        known = (
            "P@10 unknown: the labels of an uploaded image are not known"
            if p10 is None
            else f"P@10 = {p10:.1f}"
        )
        return f"**{title}** · {known}", self.tiles(ranking, captions)

    # ------------------------------------------------------------------ search

    def search(self, answer: SearchAnswer, state: SearchState) -> dict:
        """The search tab's outputs (SEARCH_OUTPUTS) and the state they belong to."""
        att, image = answer.attention, answer.query.image
        coarse, reranked = answer.coarse.top(SHOWN_RESULTS), answer.reranked.top(SHOWN_RESULTS)
        coarse_header, coarse_tiles = self.result_row(
            COARSE_TITLE, coarse, [f"d_g={d}" for d in coarse.distances]
        )
        rerank_header, rerank_tiles = self.result_row(
            RERANK_TITLE,
            reranked,
            [
                f"d_L={d} · d_g={g}"
                for d, g in zip(reranked.distances, reranked.global_distances, strict=True)
            ],
        )
        return {
            "cam": self.files(
                pictures.with_clicks(
                    pictures.heat_overlay(image, att.m_avg), len(image), state.corner, state.box
                )
            ),
            "region": self.files(pictures.region_outline(att.b_avg, att.region)),
            "maps": self.activation_maps(answer),
            "scores": self.files(pictures.scores_chart(att.scores, att.selected)),
            "strip": self.files(
                pictures.code_strip(answer.global_bits, answer.local_bits, att.selected, att.scores)
            ),
            "info": search_info(answer, state, self.engine),
            "coarse_header": coarse_header,
            "coarse": coarse_tiles,
            "rerank_header": rerank_header,
            "reranked": rerank_tiles,
            "state": replace(
                state,
                reranked_ids=tuple(int(i) for i in reranked.ids),
                exports=(self.export(answer, state, "json"), self.export(answer, state, "csv")),
            ),
        }

    def activation_maps(self, answer: SearchAnswer) -> list[tuple[str, str]]:
        att, chosen = answer.attention, set(answer.attention.selected.tolist())
        return [
            (
                self.files(
                    pictures.heat_overlay(answer.query.image, att.activation_map(c), alpha=0.6, size=96)
                ),
                f"map {c} · s={att.scores[c]}" + (" · selected" if c in chosen else ""),
            )
            for c in np.argsort(-att.scores, kind="stable")[:SHOWN_MAPS]
        ]

    def bit(self, state: SearchState, x: float, y: float, theta: float, top_l: int) -> tuple[str, str]:
        """A click on the code rows: a global bit shows its own CAM M_j; a local bit its activation map."""
        encoded, image = state.query.encoded, state.query.image
        hit = pictures.strip_cell(x, y, encoded.global_bits.shape[1], encoded.local_bits.shape[1])
        if hit is None:
            raise ValueError("Click a bit of H_g (the top row) or of H_l to see where it looks.")
        kind, index = hit
        if kind == "global":
            value = int(encoded.global_bits[0, index])
            text = (
                f"**Global bit {index} = {value}**: its own CAM M_{index}, signed by its value "
                f"({'+' if value else '-'}w_{index}); panel 1 shows the mean over all global bits, M_avg."
            )
            return self.files(pictures.heat_overlay(image, self.engine.bit_cam(encoded, index))), text
        att = self.engine.attention(encoded, theta, top_l)
        chosen = "selected" if index in set(att.selected.tolist()) else "not selected"
        text = (
            f"**Local bit {index} = {int(encoded.local_bits[0, index])}**: Conv7 map {index}'s "
            f"activation map, overlap score s = {att.scores[index]} ({chosen} at L = {top_l})."
        )
        return self.files(pictures.heat_overlay(image, att.activation_map(index))), text

    def why(self, state: SearchState, index: int, theta: float, top_l: int) -> tuple[str, str]:
        answer = self.engine.why(state.query, state.reranked_ids[index], theta, top_l)
        relevant = {
            None: "the query's labels are unknown",
            True: f"**shares a label** with the query ({self.engine.label_text(answer.shared)})",
            False: "**shares no label** with the query",
        }[answer.relevant]
        text = (
            f"Result {index + 1}: gallery #{answer.gallery_id}, {self.engine.label_text(answer.labels)}; "
            f"{relevant}. It agrees with the query on **{len(answer.agree)} of {answer.selected}** selected "
            f"bits (d_L = {answer.local_distance}, what ranked it), on {answer.local_agree} of "
            f"{answer.local_bits} bits of the full local code (d = {answer.local_bits - answer.local_agree}) "
            f"and its global distance is d_g = {answer.global_distance}. "
            "Its own attention region is outlined."
        )
        picture = pictures.image_with_region(self.engine.gallery_images[answer.gallery_id], answer.region)
        return self.files(picture), text

    def compare(self, comparison: Comparison) -> tuple[str, str]:
        """The side-by-side view: one picture of every method's top 10, and a table of their P@10 and of
        how many results hold the item the query's attention sits on."""
        engine, rows = self.engine, comparison.rows
        attended = None if comparison.attended is None else engine.classes[comparison.attended]

        def count(flags) -> str:
            return "unknown" if flags is None else f"{int(np.sum(flags))} of {len(flags)}"

        picture = pictures.comparison_grid(
            [
                (
                    name,
                    [engine.gallery_images[i] for i in row.ids],
                    [None] * len(row.ids) if row.relevant is None else row.relevant.tolist(),
                    [None] * len(row.ids) if attended is None else comparison.holds_attended[name].tolist(),
                )
                for name, row in rows.items()
            ]
        )
        p10 = {name: row.precision_at(SHOWN_RESULTS) for name, row in rows.items()}
        header = ["method", "in words", "P@10 (shares a label)", "results holding the attended item"]
        table = [
            [
                f"`{name}`",
                in_words(name),
                "unknown" if p10[name] is None else f"{p10[name]:.1f}",
                count(comparison.holds_attended[name]),
            ]
            for name in rows
        ]
        lines = [markdown_table(header, table)]
        note = (
            f"The attention region sits on the query's **{attended}**; a gold bar marks the results that "
            "hold one."
            if attended is not None
            else "The query's items are not recorded (an uploaded image), so the attended item is unknown."
        )
        lines += [
            "",
            note + " Frames as above. `hier_random` is one seeded draw of L bits (the evaluation averages "
            "five); `hier_box` appears once you box an object on panel 1.",
        ]
        return self.files(picture), "\n".join(lines)

    def export(self, answer: SearchAnswer, state: SearchState, kind: str) -> str:
        """The shown result as a JSON or CSV file: the query, the parameters, the selected bits and every
        row shown (ids, distances, labels, relevance); returns its path."""
        theta, top_l, n_coarse = state.params
        rows = {
            "global_only": answer.coarse.top(SHOWN_RESULTS),
            "reranked": answer.reranked.top(SHOWN_RESULTS),
        }
        query_labels = None if answer.query.labels is None else self.engine.label_text(answer.query.labels)
        records = [
            {
                "row": row,
                "rank": rank + 1,
                "gallery_id": int(gallery_id),
                "distance": int(ranking.distances[rank]),
                "global_distance": None
                if ranking.global_distances is None
                else int(ranking.global_distances[rank]),
                "labels": self.engine.label_text(self.engine.gallery_labels[gallery_id]),
                "shares_a_label": None if ranking.relevant is None else bool(ranking.relevant[rank]),
            }
            for row, ranking in rows.items()
            for rank, gallery_id in enumerate(ranking.ids)
        ]
        if kind == "csv":
            lines = io.StringIO()
            writer = csv.DictWriter(lines, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
            return self.files.store(lines.getvalue().encode(), ".csv")
        document = {
            "dataset": self.engine.dataset,
            "query": {"file": Path(state.path).name, "labels": query_labels},
            "parameters": {"theta": theta, "L": top_l, "K": n_coarse, "box": state.box},
            "selected_bits": answer.attention.selected.tolist(),
            "rows": records,
        }
        return self.files.store(json.dumps(document, indent=2).encode(), ".json")

    # ------------------------------------------------------------------ compose

    def compose(self, answer: ComposeAnswer) -> dict:
        """The compose tab's outputs (COMPOSE_OUTPUTS)."""

        def captions(ranking: Ranking) -> list[str]:
            if ranking.jaccard is None:
                return [f"d={d}" for d in ranking.distances]
            return [
                f"d={d} · Jaccard {j:.2f}" for d, j in zip(ranking.distances, ranking.jaccard, strict=True)
            ]

        return {
            "summary": compose_summary(answer, self.engine),
            "composed": self.tiles(answer.composed, captions(answer.composed)),
            "bitwise": self.tiles(answer.bitwise, captions(answer.bitwise)),
        }

    def baselines(self, answer: ComposeAnswer) -> str:
        """The line shown with the baselines toggle: exact matches in the top 10 of every route."""
        if answer.target is None:
            return "Exact matches of the baselines unknown: an input is not a dataset image."
        routes = {"composed code (DCOH)": answer.composed, "bitwise": answer.bitwise}
        if answer.label_route is not None:
            routes["label route"] = answer.label_route
        counts = " · ".join(f"{name} **{answer.exact_in_top(r)}**" for name, r in routes.items())
        return f"**Exactly T in the top 10:** {counts} (of 10)."


def search_info(answer: SearchAnswer, state: SearchState, engine: Engine) -> str:
    """The text beside the panels: the query's labels, the selection, the box, the notes."""
    att, top_l = answer.attention, len(answer.attention.selected)
    labels = answer.query.labels
    which = (
        "labels unknown (not a dataset image)"
        if labels is None
        else f"labels: **{engine.label_text(labels)}**"
    )
    positive = att.selected[att.scores[att.selected] > 0].tolist()
    filler = att.selected[att.scores[att.selected] == 0].tolist()
    info = (
        f"Query {which}. Selected {top_l} of {len(answer.local_bits)} local bits; "
        f"**{len(positive)} of {top_l}** overlap the attention region: `{', '.join(map(str, positive))}`"
    )
    if filler:
        info += f"; filled by the tie rule (channel order, no overlap): `{', '.join(map(str, filler))}`"
    if state.box is not None:
        shared = len(set(att.selected.tolist()) & set(answer.cam_selected.tolist()))
        info += (
            f"\n\n**Your box replaces the attention region** (panel 2): {shared} of {top_l} selected bits "
            "are the ones the CAM region would pick. Clear the box to return to the CAM."
        )
    elif state.corner is not None:
        info += "\n\nPoint at the object: now click the opposite corner of its box on panel 1."
    if answer.smooth:
        info += (
            f"\n\n**This picture is smooth, with no items in it**: it has less fine detail than 99% of the "
            f"{engine.data_description} in val, so its codes describe a background: read the results "
            "with care."
        )
    elif answer.out_of_domain:
        info += (
            f"\n\n**This image looks unlike the {engine.data_description} the models were trained on** "
            f"(novelty {answer.novelty:.3f}, above the {engine.novelty_threshold:.3f} that flags 1% of val "
            "images): read the results with care."
        )
    if not att.region.any():
        info += (
            "\n\n**The attention region is empty at this theta**: no pixel of M_avg passes it, so every "
            "selected bit is tie-rule filler. Lower theta."
        )
    return info


def compose_summary(answer: ComposeAnswer, engine: Engine) -> str:
    def known(labels: np.ndarray | None) -> str:
        return engine.label_text(labels) if labels is not None else "labels unknown"

    names = " · ".join(
        f"**{slot}:** {known(lab)}" for slot, lab in zip("ABC", answer.input_labels, strict=False)
    )
    ops, target = answer.operators, answer.target
    expression = f"A {ops[0]} B" if len(ops) == 1 else f"(A {ops[0]} B) {ops[1]} C"
    summary = (
        f"{names}\n\n**Target set T = {expression}:** "
        f"{'unknown (an input is not a dataset image)' if target is None else known(target)}\n\n"
        f"**Predicted from the composed code:** {engine.label_text(answer.predicted_probs > 0.5)}"
    )
    if target is not None:
        summary += f"\n\n**Top 10 with exactly T:** {answer.exact_in_top(answer.composed)} of 10"
        if target.sum() > engine.max_labels:
            summary += (
                f"\n\nT has {target.sum()} labels and gallery images hold at most {engine.max_labels}: "
                "no exact match exists."
            )
    return summary
