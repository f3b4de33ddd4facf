"""Engine answers as the components' values, keyed by output name: pictures as files, captions, text.

The presenter formats; it computes nothing about relevance or rankings (the engine's answers carry
them). Output names are the API's: /search returns SEARCH_OUTPUTS, /compose COMPOSE_OUTPUTS, in order.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np

from hashdemo.app import pictures
from hashdemo.app.exports import code_text, figures_record, row_records, source_name, write
from hashdemo.app.picture_files import PictureFiles
from hashdemo.app.state import SearchState
from hashdemo.evaluation.markdown import markdown_table
from hashdemo.evaluation.method_labels import in_words
from hashdemo.service.answers import Comparison, ComposeAnswer, Ranking, RowFigures, SearchAnswer
from hashdemo.service.engine import Engine
from hashdemo.service.relevance import RELEVANCE, UNLABELLED, Relevance

SHOWN_RESULTS = 10  # tiles per result row
COMPOSED_RESULTS = 20  # tiles per composition row (of the 100 its figures are computed on)
SHOWN_MAPS = 12  # activation maps shown, highest score first
COARSE_TITLE = "Global code only (top-K)"
RERANK_TITLE = "Re-ranked on the L attention bits"
SEARCH_OUTPUTS = (  # the panels, both rows, then what must follow every search so that nothing is stale
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
    "why_image",
    "why_text",
    "bit_view",
    "bit_text",
    "side_image",
    "side_table",
    "export_json",
    "export_csv",
    "address",
    "link_note",
    "pin_text",
    "pin_image",
    "curve_image",
    "rerank_ties",
)
COMPOSE_OUTPUTS = ("summary", "composed", "bitwise", "export_json", "export_csv", "address", "link_note")
EXPLANATIONS = {  # the panels that explain one result or one bit, and what they show before a click
    "why_image": None,
    "why_text": "Select a result to see which selected bits it agrees on, or to search with it.",
    "bit_view": None,
    "bit_text": "Click a bit in the code rows to see where it looks.",
}
EXPORTED = 100  # results of each row a search's files hold: AP@100 recomputes (/search_json has all K)
PIN_PROMPT = "Pin a view, change the query or theta, L, K, then compare the pinned view with this one."
CLEARED_VIEWS = {"pin_text": "", "pin_image": None, "curve_image": None}  # of an earlier view (the pin stays)
UPLOAD_NOTES = {  # said beside the link when an image is not a dataset image (a link names images by id)
    "search": "Your own image cannot travel in a link: this link keeps theta, L, K and the box, and opens "
    "with the default example.",
    "compose": "A slot holds your own image, which cannot travel in a link: this composition has none.",
}


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
        """Framed tiles, each captioned with its gallery id, its labels and `captions`."""
        relevant = [None] * len(ranking.ids) if ranking.relevant is None else ranking.relevant.tolist()
        return [
            (
                self.tile_picture(int(i), r),
                f"#{int(i)} · {self.engine.label_text(self.engine.gallery_labels[i])} · {caption}",
            )
            for i, caption, r in zip(ranking.ids, captions, relevant, strict=True)
        ]

    # ------------------------------------------------------------------ search

    def search(
        self, answer: SearchAnswer, comparison: Comparison | None, state: SearchState, link: str
    ) -> dict:
        """Every output of a search (SEARCH_OUTPUTS), the state they belong to and no explained result:
        one answer, so no panel, download, link or side-by-side view (None: closed, emptied) can be left
        from an earlier one."""
        att, image = answer.attention, answer.query.image
        rows = {"coarse": answer.coarse, "reranked": answer.reranked}
        figures = {name: self.engine.answer_figures(answer, row) for name, row in rows.items()}
        rule = RELEVANCE[answer.relevance]
        coarse, reranked = answer.coarse.top(SHOWN_RESULTS), answer.reranked.top(SHOWN_RESULTS)
        state = replace(
            state,
            reranked_ids=tuple(int(i) for i in reranked.ids),
            coarse_ids=tuple(int(i) for i in coarse.ids),
        )
        side_image, side_table = (None, "") if comparison is None else self.compare(comparison)
        export_json, export_csv = self.export(answer, state, figures, link)
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
            "coarse_header": f"**{COARSE_TITLE}** · {judged_text(figures['coarse'], rule)}",
            "coarse": self.tiles(coarse, [f"d_g={d}" for d in coarse.distances]),
            "rerank_header": f"**{RERANK_TITLE}** · {judged_text(figures['reranked'], rule)}",
            "rerank_ties": ties_text(answer.reranked),
            "reranked": self.tiles(
                reranked,
                [
                    f"d_L={d} · d_g={g}"
                    for d, g in zip(reranked.distances, reranked.global_distances, strict=True)
                ],
            ),
            **EXPLANATIONS,
            **CLEARED_VIEWS,
            "side_image": side_image,
            "side_table": side_table,
            "export_json": export_json,
            "export_csv": export_csv,
            "address": link,
            "link_note": "" if state.source else UPLOAD_NOTES["search"],
            "state": state,
            "explained": None,
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

    def why(self, state: SearchState, row: str, index: int, theta: float, top_l: int) -> tuple[str, str, int]:
        """A result of either row matched against the query: where the query's selected bits fire in it,
        its labels, the bits it agrees on, its distances; and its gallery id (what "search with it"
        searches)."""
        ids = state.reranked_ids if row == "reranked" else state.coarse_ids
        answer = self.engine.why(state.query, ids[index], theta, top_l, box=state.box)
        relevant = {
            None: "the query's labels are unknown",
            True: f"**shares a label** with the query ({self.engine.label_text(answer.shared)})",
            False: "**shares no label** with the query",
        }[answer.relevant]
        title = RERANK_TITLE if row == "reranked" else COARSE_TITLE
        inside = int((answer.fired & answer.region).sum())
        fired = int(answer.fired.sum())
        where = (
            f"the query's {answer.selected} selected maps, averaged and binarised at theta = {theta:g} as "
            f"for the query, fire over {fired} cells of the result (red), {inside} of them inside its own "
            "attention region (gold)"
            if fired
            else f"the query's {answer.selected} selected maps, averaged, pass theta = {theta:g} nowhere in "
            "the result"
        )
        text = (
            f"Result {index + 1} of *{title}*: gallery #{answer.gallery_id}, "
            f"{self.engine.label_text(answer.labels)}; {relevant}. It agrees with the query on "
            f"**{len(answer.agree)} of {answer.selected}** selected bits (d_L = {answer.local_distance}), "
            f"on {answer.local_agree} of {answer.local_bits} bits of the full local code "
            f"(d = {answer.local_bits - answer.local_agree}) and its global distance is "
            f"d_g = {answer.global_distance}. Left: the query and the region its bits were selected on; "
            f"right: {where}."
        )
        picture = pictures.match_pair(
            state.query.image,
            answer.query_region,
            self.engine.gallery_images[answer.gallery_id],
            answer.fired_map,
            answer.fired,
            answer.region,
        )
        return self.files(picture), text, answer.gallery_id

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
        header = ["method", "in words", "P@10 (shares a label)", "results holding the attended item"]
        table = [
            [
                f"`{name}`",
                in_words(name),
                precision_cell(row),
                count(comparison.holds_attended[name]),
            ]
            for name, row in rows.items()
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

    def export(self, answer: SearchAnswer, state: SearchState, figures: dict, link: str) -> tuple[str, str]:
        """The search as JSON and CSV files (hashdemo.app.exports), e.g. hashdemo-search-query-12-K1000-top100
        (the first 100 of each row's K = 1,000)."""
        theta, top_l, n_coarse = state.params
        labels = answer.query.labels
        document = {
            "dataset": self.engine.dataset,
            "query": source_name(state.source),
            "query_labels": None if labels is None else self.engine.label_text(labels),
            "query_H_g": code_text(answer.global_bits),
            "query_H_l": code_text(answer.local_bits),
            "theta": theta,
            "L": top_l,
            "K": n_coarse,
            "box": None if state.box is None else list(state.box),
            "selected_bits": answer.attention.selected.tolist(),
            "relevance": f"{answer.relevance}: {RELEVANCE[answer.relevance].words}",
            "figures": figures_record({"global_only": figures["coarse"], "reranked": figures["reranked"]}),
            "link": link,
        }
        attended = answer.attended
        document["attended_item"] = None if attended is None else self.engine.classes[attended]
        document["rows_held"] = f"the first {EXPORTED} of each row's {n_coarse}: P@10 and AP@100 recompute"
        rows = {"global_only": answer.coarse.top(EXPORTED), "reranked": answer.reranked.top(EXPORTED)}
        records = row_records(self.engine, rows, RELEVANCE[answer.relevance].key)
        if attended is not None:  # the third relevance: holds the item the region sits on
            for record in records:
                record["holds_attended_item"] = bool(
                    self.engine.gallery_labels[record["gallery_id"], attended]
                )
        stem = f"hashdemo-search-{source_name(state.source)}-K{n_coarse}-top{min(EXPORTED, n_coarse)}"
        return write(self.files, document, records, stem)

    def compose(self, answer: ComposeAnswer, link: str) -> dict:
        """The compose tab's outputs (COMPOSE_OUTPUTS): the top 20 of each row, the summary with the
        composed row's figures against T, the downloads and the link."""
        figures = self.engine.row_figures(answer.composed, answer.target, exact=True)

        def captions(ranking: Ranking) -> list[str]:
            if ranking.jaccard is None:
                return [f"d={d}" for d in ranking.distances]
            return [
                f"d={d} · Jaccard {j:.2f}" for d, j in zip(ranking.distances, ranking.jaccard, strict=True)
            ]

        composed, bitwise = answer.composed.top(COMPOSED_RESULTS), answer.bitwise.top(COMPOSED_RESULTS)
        export_json, export_csv = self.export_composition(answer, figures, link)
        return {
            "summary": compose_summary(answer, self.engine, figures),
            "composed": self.tiles(composed, captions(composed)),
            "bitwise": self.tiles(bitwise, captions(bitwise)),
            "export_json": export_json,
            "export_csv": export_csv,
            "address": link,
            "link_note": "" if link else UPLOAD_NOTES["compose"],
        }

    def export_composition(self, answer: ComposeAnswer, figures, link: str) -> tuple[str, str]:
        """The composition as JSON and CSV, e.g. hashdemo-compose-query-2-union-gallery-5."""
        slots = [source_name(source) for source in answer.sources]
        known = [None if labels is None else self.engine.label_text(labels) for labels in answer.input_labels]
        document = {
            "dataset": self.engine.dataset,
            "slots": dict(zip("ABC", slots, strict=False)),
            "slot_labels": dict(zip("ABC", known, strict=False)),
            "operators": list(answer.operators),
            "target": None if answer.target is None else self.engine.label_text(answer.target),
            "slot_codes": dict(zip("ABC", map(code_text, answer.input_bits), strict=False)),
            "composed_code": code_text(answer.composed_bits),
            "relevance": "exactly_T: the tile's label set is the target set T",
            "figures": figures_record({"composed": figures}),
            "link": link,
        }
        rows = {
            "composed": answer.composed.top(COMPOSED_RESULTS),
            "bitwise": answer.bitwise.top(COMPOSED_RESULTS),
        }
        names = [slots[0], answer.operators[0], slots[1]]
        if len(answer.operators) > 1:
            names += [answer.operators[1], slots[2]]
        stem = "hashdemo-compose-" + "-".join(names)
        return write(self.files, document, row_records(self.engine, rows, "exactly_T"), stem)

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
        f"**{len(positive)} of {top_l}** overlap the attention region"
        + (f": `{', '.join(map(str, positive))}`" if positive else "")
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


def judged_text(figures: RowFigures | None, rule: Relevance) -> str:
    """A search row's figures and the rule they judge by (or why that rule cannot judge this query)."""
    return figures_text(figures, "K", rule.unknown) + f" · relevant = {rule.words}"


def figures_text(figures: RowFigures | None, length: str, unknown: str = UNLABELLED) -> str:
    """A row's per-query figures: P@k over the tiles shown (named P@5 when only 5 show), AP@100 (this
    query's term of map@100) and AP over the whole row (`length` names its size: K, or 100)."""
    if figures is None:
        return f"P@10 and AP unknown: {unknown}"
    text = f"P@{figures.shown} = {figures.precision:.1f}"
    if figures.shown < SHOWN_RESULTS:
        text += f" ({length} = {figures.length}: the row holds only {figures.length})"
    if figures.length > 100:
        text += f" · AP@100 = {figures.ap_at_100:.2f}"
    return text + f" · AP@{figures.length} = {figures.ap:.2f}"


def ties_text(row: Ranking, shown: int = SHOWN_RESULTS, values_shown: int = 8) -> str:
    """The re-rank's tie structure: d_L over the K candidates (value: count), and how many candidates
    share the last shown tile's d_L (the global distance, then the id, orders them)."""
    distances = np.asarray(row.distances)
    if not len(distances):
        return ""
    values, counts = np.unique(distances, return_counts=True)
    histogram = " · ".join(
        f"{v}: {c}" for v, c in zip(values[:values_shown], counts[:values_shown], strict=True)
    )
    more = f" · {len(values) - values_shown} more values" if len(values) > values_shown else ""
    last = int(distances[min(shown, len(distances)) - 1])
    tied = int((distances == last).sum())
    return (
        f"d_L over the K = {len(distances)} candidates (value: count): {histogram}{more}. The tiles shown "
        f"reach d_L = {last}, which {tied} candidates share: among them the global distance, then the id, "
        "decides."
    )


def precision_cell(row: Ranking) -> str:
    """P@10 of a side-by-side row, named P@k when the row holds only k results (a small K)."""
    shown = min(len(row.ids), SHOWN_RESULTS)
    if row.relevant is None:
        return "unknown"
    value = f"{row.precision_at(shown):.1f}"
    return value if shown == SHOWN_RESULTS else f"{value} (P@{shown})"


def compose_summary(answer: ComposeAnswer, engine: Engine, figures: RowFigures | None = None) -> str:
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
        summary += f" · {figures_text(figures, 'rows')} (relevant: exactly T)"
        if not target.any():
            summary += (
                "\n\nT is empty (the inputs share no label, or B holds all of A's), and every gallery image "
                "holds at least one item: no exact match exists."
            )
        elif target.sum() > engine.max_labels:
            summary += (
                f"\n\nT has {target.sum()} labels and gallery images hold at most {engine.max_labels}: "
                "no exact match exists."
            )
    return summary
