"""The Gradio interface over one `Engine`: one function per tab, handlers of a few lines.

Handlers validate, make one engine call and format. Every ValueError or ImageError a handler
raises (bad parameters, unreadable images) becomes a `gr.Error` sentence in one place,
`user_errors`. Outputs are addressed by name (`SEARCH_OUTPUTS`, `COMPOSE_OUTPUTS`), never by position.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import cv2
import gradio as gr
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from hashdemo.app import pictures, report
from hashdemo.app.engine import Engine
from hashdemo.app.images import ImageError
from hashdemo.data import MAX_ITEMS, label_text
from hashdemo.files import write_atomic
from hashdemo.label_ops import OPERATORS, jaccard
from hashdemo.retrieval.index import GalleryUnavailable
from hashdemo.retrieval.metrics import relevance

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CSS = (HERE / "style.css").read_text()
JS = (HERE / "dragdrop.js").read_text()  # drag and drop of tiles onto the compose slots
HOW_IT_WORKS = (HERE / "how_it_works.md").read_text()
SHOWN_RESULTS = 10  # tiles per result row
SHOWN_MAPS = 12  # activation maps shown, highest score first
COARSE_TITLE = "Global code only (top-K)"
RERANK_TITLE = "Re-ranked on the L attention bits"
MAX_UPLOAD = "10mb"
NO_CHAIN = "(no chain)"
# What /search and /compose return, in API order; the app's components carry the same names.
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


def user_errors(handler: Callable) -> Callable:
    """Turn the user's mistakes (ValueError, ImageError), and a remote gallery that did not answer, into
    one gr.Error sentence; the only such place.

    The server log gets one line (which handler, what), not a traceback; real errors keep theirs.
    """

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (ValueError, ImageError) as error:
            log.info("refused input at %s: %s", handler.__name__, error)
            raise gr.Error(str(error), print_exception=False) from None
        except GalleryUnavailable as error:  # the app stays up and answers again when Milvus is back
            log.warning("gallery unavailable at %s: %s", handler.__name__, error)
            raise gr.Error(str(error), print_exception=False) from None

    return wrapped


def image_input(label: str, height: int, elem_id: str | None = None) -> gr.Image:
    """An image input that hands the handler the file (hashdemo.app.images converts every mode), even one
    Gradio cannot open: the handler's reader refuses it with a sentence naming the input.

    Gradio opens an upload with PIL before any handler runs; a file that is not an image would
    otherwise fail there, in every event that reads the input (Gradio fires `change` twice when an
    upload replaces an image: two identical messages). The check is wrapped on the instance: a subclass
    of a Gradio component makes Gradio write a .pyi stub next to this module at import time.
    """
    component = gr.Image(
        label=label,
        type="filepath",
        image_mode=None,
        sources=["upload", "clipboard"],
        height=height,
        elem_id=elem_id,
    )
    check = component.preprocess

    def preprocess(payload):
        try:
            return check(payload)
        except (Image.DecompressionBombError, UnidentifiedImageError, OSError):
            return payload.path  # hashdemo.app.images refuses it with a sentence (size, not an image)

    component.preprocess = preprocess
    return component


class OutputFiles:
    """Handler pictures as content-addressed PNG files, each written once, atomically.

    Gradio caches numpy/PIL outputs under a name made from their content with a plain
    truncate-and-write, so two requests returning the same picture rewrite a file that another
    is streaming ("Too little data for declared Content-Length", gradio-app/gradio#8878).
    A file path takes Gradio's other route, which copies with an atomic rename.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, image: np.ndarray) -> str:
        return self.store(self.png(image))

    @staticmethod
    def png(image: np.ndarray) -> bytes:
        # fast PNG compression: the pictures are small and made on every request
        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        return cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()

    def figure(self, draw: Callable[..., Figure], *source: object) -> str:
        """A matplotlib figure as a PNG file (gr.Plot would import pyplot into the server to close it),
        drawn once per `draw` and `source` (the numbers it shows): later starts read the file."""
        key = hashlib.sha256(json.dumps([draw.__qualname__, source], sort_keys=True, default=str).encode())
        path = self.directory / f"figure-{key.hexdigest()[:32]}.png"
        if not path.exists():
            buffer = io.BytesIO()
            draw(*source).savefig(buffer, format="png", dpi=100)
            write_atomic(path, buffer.getvalue(), durable=False)
        return str(path)

    def store(self, data: bytes) -> str:
        path = self.directory / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        try:
            os.utime(path)  # named again: the disk budget keeps it while this response is delivered
        except FileNotFoundError:
            write_atomic(path, data, durable=False)  # a picture lost in a crash is drawn again
        return str(path)


def read_image(engine: Engine, path: str | None, what: str) -> np.ndarray:
    """The image at `path` as the models' input, or a ValueError/ImageError sentence naming `what`."""
    if not path:
        raise ValueError(f"Please provide {what}: upload or drop an image file, or click an example.")
    try:
        return engine.read_image(path)
    except ImageError as error:
        raise ImageError(f"{what[0].upper()}{what[1:]}: {error}") from None  # "slot A", not "slot a"


class Presenter:
    """Engine results as the components' values, keyed by output name: pictures as files, captions."""

    def __init__(self, engine: Engine, files: OutputFiles):
        self.engine, self.files = engine, files
        # a gallery tile's picture depends only on (id, frame): encode each one once, but store it
        # on every use, which renews the file (or redraws it if the disk budget removed it)
        # (512 framed 128x128 tiles are about 3 MB)
        self.tile_png = functools.lru_cache(maxsize=512)(self._tile_png)
        self.tile_ids: dict[
            str, int
        ] = {}  # tile picture file name -> gallery id, for tiles dragged onto a slot

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

    def tile(self, gallery_id: int, caption: str, relevant: bool | None) -> tuple[str, str]:
        labels = self.engine.gallery_labels[gallery_id]
        return self.tile_picture(int(gallery_id), relevant), f"{label_text(labels)} · {caption}"

    def result_row(self, title: str, ids, captions, query_labels) -> tuple[str, list]:
        """A header with the row's P@10 (when the query's labels are known) and its framed tiles."""
        ids = ids[:SHOWN_RESULTS]
        relevant = (
            [None] * len(ids)
            if query_labels is None
            else relevance(query_labels[None], self.engine.gallery_labels[ids])[0].tolist()
        )
        p10 = (
            "P@10 unknown: the labels of an uploaded image are not known"
            if query_labels is None
            else f"P@10 = {np.mean(relevant):.1f}"
        )
        return f"**{title}** · {p10}", [
            self.tile(i, c, r) for i, c, r in zip(ids, captions, relevant, strict=False)
        ]

    def search(self, state: dict, theta: float, top_l: int, n_coarse: int) -> dict:
        engine, image, labels = self.engine, state["image"], state["labels"]
        box = state.get("box")
        region = None if box is None else box_mask(box, engine.image_size)
        result = engine.search_encoded(state["encoded"], theta, top_l, n_coarse, region)
        att = result.attention
        chosen = set(att.selected.tolist())
        maps = [
            (
                self.files(pictures.heat_overlay(image, att.activation_map(c), alpha=0.6, size=96)),
                f"map {c} · s={att.scores[c]}" + (" · selected" if c in chosen else ""),
            )
            for c in np.argsort(-att.scores, kind="stable")[:SHOWN_MAPS]
        ]
        coarse_header, coarse = self.result_row(
            COARSE_TITLE, result.coarse_ids, [f"d_g={d}" for d in result.coarse_distances], labels
        )
        rerank_header, reranked = self.result_row(
            RERANK_TITLE,
            result.reranked_ids,
            [
                f"d_L={d} · d_g={g}"
                for d, g in zip(result.reranked_distances, result.reranked_global_distances, strict=True)
            ],
            labels,
        )
        known = (
            "labels unknown (not a dataset image)" if labels is None else f"labels: **{label_text(labels)}**"
        )
        positive = att.selected[att.scores[att.selected] > 0].tolist()
        filler = att.selected[att.scores[att.selected] == 0].tolist()
        info = (
            f"Query {known}. Selected {top_l} of {len(result.local_bits)} local bits; "
            f"**{len(positive)} of {top_l}** overlap the attention region: `{', '.join(map(str, positive))}`"
        )
        if filler:
            info += f"; filled by the tie rule (channel order, no overlap): `{', '.join(map(str, filler))}`"
        if box is not None:
            cam_choice = set(engine.attention(state["encoded"], theta, top_l).selected.tolist())
            info += (
                f"\n\n**Your box replaces the attention region** (panel 2): {len(chosen & cam_choice)} "
                f"of {top_l} selected bits are the ones the CAM region would pick. "
                "Clear the box to return to the CAM."
            )
        elif state.get("corner") is not None:
            info += "\n\nPoint at the object: now click the opposite corner of its box on panel 1."
        score, far = engine.novelty(state["encoded"])
        if far:
            info += (
                "\n\n**This image looks unlike the outfits the models were trained on** "
                f"(novelty {score:.3f}, above the {engine.novelty_threshold:.3f} that flags 1% of val "
                "images): read the results with care."
            )
        if not att.region.any():
            info += (
                "\n\n**The attention region is empty at this theta**: no pixel of M_avg passes it, so every "
                "selected bit is tie-rule filler. Lower theta."
            )
        return {
            "cam": self.files(pictures.heat_overlay(image, att.m_avg)),
            "region": self.files(pictures.region_outline(att.b_avg, att.region)),
            "maps": maps,
            "scores": self.files(pictures.scores_chart(att.scores, att.selected)),
            "strip": self.files(
                pictures.code_strip(result.global_bits, result.local_bits, att.selected, att.scores)
            ),
            "info": info,
            "coarse_header": coarse_header,
            "coarse": coarse,
            "rerank_header": rerank_header,
            "reranked": reranked,
            "state": {
                **state,
                "reranked_ids": result.reranked_ids[:SHOWN_RESULTS],
                "params": (theta, top_l, n_coarse),  # what the panels show: a refused value goes back to it
            },
        }

    def bit(self, state: dict, x: float, y: float, theta: float, top_l: int) -> tuple[str, str]:
        """A click on the code rows: a global bit shows its own CAM M_j; a local bit its activation map."""
        encoded, image = state["encoded"], state["image"]
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

    def why(self, state: dict, index: int, theta: float, top_l: int) -> tuple[str, str]:
        engine = self.engine
        gallery_id = int(state["reranked_ids"][index])
        att, local_bits = engine.gallery_attention(gallery_id, theta, top_l)
        query = engine.attention(state["encoded"], theta, top_l)
        query_bits = state["encoded"].local_bits[0]
        agree = [int(c) for c in query.selected if local_bits[c] == query_bits[c]]
        text = (
            f"Result {index + 1} (gallery #{gallery_id}, {label_text(engine.gallery_labels[gallery_id])}) "
            f"agrees with the query on **{len(agree)} of {len(query.selected)}** selected bits: `{agree}`. "
            "Its own attention region is outlined."
        )
        return self.files(pictures.image_with_region(engine.gallery_images[gallery_id], att.region)), text

    def compose(
        self,
        image_a: np.ndarray,
        image_b: np.ndarray,
        operator: str,
        image_c: np.ndarray | None = None,
        then: str | None = None,
    ) -> dict:
        engine = self.engine
        images = [image_a, image_b] if image_c is None else [image_a, image_b, image_c]
        operators = (operator,) if then is None else (operator, then)
        labels = [engine.known_labels(image) for image in images]
        result = engine.compose(image_a, image_b, operator, image_c=image_c, then=then)
        target = None if any(lab is None for lab in labels) else engine.target_labels(operators, labels)

        def tiles(ids, distances) -> list:
            out = []
            for gallery_id, distance in zip(ids, distances, strict=True):
                labels = engine.gallery_labels[gallery_id]
                caption, exact = f"d={distance}", None
                if target is not None:
                    caption += f" · Jaccard {jaccard(labels[None], target[None])[0, 0]:.2f}"
                    exact = bool(relevance(target[None], labels[None], exact=True)[0, 0])
                out.append(self.tile(gallery_id, caption, exact))
            return out

        def known(labels) -> str:
            return label_text(labels) if labels is not None else "labels unknown"

        names = " · ".join(f"**{slot}:** {known(lab)}" for slot, lab in zip("ABC", labels, strict=False))
        expression = f"A {operator} B" if then is None else f"(A {operator} B) {then} C"
        summary = (
            f"{names}\n\n"
            f"**Target set T = {expression}:** "
            f"{'unknown (an input is not a dataset image)' if target is None else known(target)}\n\n"
            f"**Predicted from the composed code:** {label_text(result.predicted_probs > 0.5)}"
        )
        if target is not None:
            exact = relevance(target[None], engine.gallery_labels[result.ids[:10]], exact=True)[0]
            summary += f"\n\n**Top 10 with exactly T:** {int(exact.sum())} of 10"
        if target is not None and target.sum() > MAX_ITEMS:
            summary += (
                f"\n\nT has {target.sum()} labels and gallery images hold at most {MAX_ITEMS}: "
                "no exact match exists."
            )
        return {
            "summary": summary,
            "composed": tiles(result.ids, result.distances),
            "bitwise": tiles(result.bitwise_ids, result.bitwise_distances),
        }


def box_mask(box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(size, size) bool: True inside the box (top, left, bottom, right), bounds inclusive."""
    top, left, bottom, right = box
    mask = np.zeros((size, size), bool)
    mask[top : bottom + 1, left : right + 1] = True
    return mask


def corner_box(first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box (top, left, bottom, right) spanned by two clicked corners (x, y)."""
    (x0, y0), (x1, y1) = first, second
    return min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)


def panel(title: str, elem_id: str, height: int | None = 256) -> gr.Image:
    """A picture with its title above it: Gradio's floating label would cover the picture's top rows
    (the H_g row of the codes, the corners a user clicks)."""
    gr.Markdown(f"**{title}**", elem_classes="panel-title")
    return gr.Image(
        label=title, show_label=False, height=height, elem_id=f"{elem_id}-panel", buttons=["fullscreen"]
    )


def write_examples(engine: Engine, examples_dir: Path) -> list[str]:
    """The example images as PNG files Gradio can serve; written once."""
    examples_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (image, _) in engine.examples.items():
        path = examples_dir / f"{name}.png"
        if not path.exists():
            Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def search_tab(demo: gr.Blocks, engine: Engine, present: Presenter, example_paths: list[str]) -> None:
    defaults, channels = engine.defaults, engine.hier_codes.local_bits.shape[1]
    chosen = "chosen on val" if engine.hier.metrics.get("test") else "a default until the evaluation has run"
    state = gr.State(None)
    gr.Markdown(
        "**Start here:** an example query is already searched. Click another example or drop your own image, "
        "then move theta, L or K: attention and both result rows follow."
    )
    with gr.Row():
        with gr.Column(scale=1):
            query = image_input("Query image", height=256)
            examples = gr.Examples(
                example_paths,
                inputs=query,
                label="Example queries (query split: labels known)",
                examples_per_page=len(example_paths),
            )
            theta = gr.Slider(
                0.0,
                1.0,
                value=defaults["theta"],
                step=0.05,
                label="theta (binarisation threshold)",
                info=f"binarises M_avg and every activation map; {defaults['theta']} is {chosen}",
            )
            top_l = gr.Slider(
                1,
                channels,
                value=defaults["L"],
                step=1,
                label="L (selected local bits)",
                info=f"bits of H_l compared in the re-rank, of {channels}; {defaults['L']} is {chosen}",
            )
            n_coarse = gr.Slider(
                1,
                2000,
                value=defaults["K"],
                step=1,
                label="K (coarse candidates)",
                info=f"candidates the global code keeps for the re-rank; {defaults['K']} is {chosen}",
            )
            info = gr.Markdown()
            clear = gr.Button("Clear my box (back to the CAM region)", size="sm")
        with gr.Column(scale=2):
            with gr.Row():
                with gr.Column():
                    cam = panel(
                        "1. Averaged CAM of the global bits, M_avg (click two corners to box the object)",
                        "cam",
                    )
                with gr.Column():
                    region = panel("2. B_avg, its largest connected component outlined", "region")
            # the results come right after the query's attention, so they show without scrolling past
            # panels that are still empty (1400x900); the per-map and per-bit panels follow them
            coarse_header = gr.Markdown(f"**{COARSE_TITLE}**")
            coarse = gr.Gallery(label=COARSE_TITLE, columns=5, height="auto")
            rerank_header = gr.Markdown(f"**{RERANK_TITLE}**")
            reranked = gr.Gallery(label=RERANK_TITLE, columns=5, height="auto")
            gr.Markdown(
                "Frames: **green** = shares a label with the query (the relevance behind P@10), "
                "**red** = shares none; no frame when the query's labels are unknown (an uploaded image)."
            )
            with gr.Row():
                with gr.Column():
                    why_image = panel("Why this result: its own attention region", "why", height=200)
                why_text = gr.Markdown("Select a re-ranked result to see which selected bits it agrees on.")
            maps = gr.Gallery(
                label="3. Activation maps of the top-scoring Conv7 feature maps", columns=6, height=300
            )
            scores = panel("Overlap scores of all Conv7 maps", "scores", height=None)
            strip = panel(
                "4. Codes: H_g, then H_l in rows of 64 (selected bits framed; click a bit)",
                "strip",
                height=None,
            )
            with gr.Row():
                with gr.Column():
                    bit_view = panel(
                        "5. The clicked bit: its own CAM (H_g) or activation map (H_l)", "bit", height=200
                    )
                bit_text = gr.Markdown("Click a bit in the code rows to see where it looks.")
    named = {
        "cam": cam,
        "region": region,
        "maps": maps,
        "scores": scores,
        "strip": strip,
        "info": info,
        "coarse_header": coarse_header,
        "coarse": coarse,
        "rerank_header": rerank_header,
        "reranked": reranked,
        "state": state,
    }
    outputs = list(named.values())

    def by_component(values: dict) -> dict:
        return {named[name]: value for name, value in values.items()}

    @user_errors
    def search(image_path, theta, top_l, n_coarse):
        theta, top_l, n_coarse = engine.check_params(theta, top_l, n_coarse)
        image = read_image(engine, image_path, "a query image")
        state = {
            "path": image_path,
            "image": image,
            "labels": engine.known_labels(image),
            "encoded": engine.encode_hier(image),
        }
        return by_component(present.search(state, theta, top_l, n_coarse))

    def search_example(index: int, theta, top_l, n_coarse) -> dict:
        """An example shown in the query box and searched (the box is set here, not by its own event)."""
        return {query: example_paths[index], **search(example_paths[index], theta, top_l, n_coarse)}

    @user_errors
    def rerank(state, theta, top_l, n_coarse):
        if not state:  # moving a slider before choosing a query just sets it
            return {}
        return by_component(present.search(state, *engine.check_params(theta, top_l, n_coarse)))

    def restore_params(state):
        """After a refused theta, L or K (out of range, not an integer): the controls go back to the values
        the panels show, so a number box and its slider never disagree with each other or the results."""
        return tuple(gr.skip() for _ in range(3)) if not state else state["params"]

    def restore_query(state):
        """After a refused upload the query box shows the query the panels belong to (empty before any)."""
        return state["path"] if state else None

    @user_errors
    def why(state, theta, top_l, evt: gr.SelectData):
        if not state or "reranked_ids" not in state:
            raise ValueError("Run a search first.")
        theta, top_l, _ = engine.check_params(theta, top_l, 1)
        return present.why(state, evt.index, theta, top_l)

    # A user's upload (file, drop, paste) searches; an example click or the first load sets the box and
    # searches in one event. Not `query.change`: it fires twice when an upload replaces an image (one bad
    # file, two messages) and also on clearing the box, which is not a request. Refusals show one
    # message and leave every panel as it was: no progress badge (a search takes well under a second)
    # that would turn into a red "Error" on each panel.
    params = [theta, top_l, n_coarse]
    query.upload(search, [query, *params], outputs, api_name="search", show_progress="hidden").failure(
        restore_query, state, query, api_name=False
    )

    def search_clicked_example(theta, top_l, n_coarse, evt: gr.SelectData) -> dict:
        return search_example(evt.index, theta, top_l, n_coarse)

    examples.dataset.select(
        search_clicked_example,
        params,
        [query, *outputs],
        api_name=False,
        show_progress="hidden",
    )
    demo.load(
        lambda *values: search_example(len(example_paths) - 1, *values),
        params,
        [query, *outputs],
        api_name=False,
    )
    gr.on(  # a drag, a typed value: the last one wins
        [theta.change, top_l.change, n_coarse.change],
        rerank,
        [state, *params],
        outputs,
        api_name=False,
        trigger_mode="always_last",
        show_progress="hidden",
    ).failure(restore_params, state, params, api_name=False)
    reranked.select(why, [state, theta, top_l], [why_image, why_text], api_name=False)

    @user_errors
    def point(state, theta, top_l, n_coarse, evt: gr.SelectData):
        """Two clicks on panel 1 mark the object's box (corners); it replaces the CAM's region."""
        if not state:
            raise ValueError("Run a search first.")
        scale = engine.image_size / pictures.DISPLAY
        corner = (int(evt.index[0] * scale), int(evt.index[1] * scale))
        if state.get("corner") is None:
            state = {**state, "corner": corner, "box": None}
        else:
            state = {**state, "corner": None, "box": corner_box(state["corner"], corner)}
        return by_component(present.search(state, *engine.check_params(theta, top_l, n_coarse)))

    @user_errors
    def clear_box(state, theta, top_l, n_coarse):
        if not state:
            return {}
        state = {**state, "corner": None, "box": None}
        return by_component(present.search(state, *engine.check_params(theta, top_l, n_coarse)))

    cam.select(point, [state, theta, top_l, n_coarse], outputs, api_name=False)
    clear.click(clear_box, [state, theta, top_l, n_coarse], outputs, api_name=False)

    @user_errors
    def show_bit(state, theta, top_l, evt: gr.SelectData):
        if not state:
            raise ValueError("Run a search first.")
        theta, top_l, _ = engine.check_params(theta, top_l, 1)
        return present.bit(state, *evt.index, theta, top_l)

    strip.select(show_bit, [state, theta, top_l], [bit_view, bit_text], api_name=False)


def dropped_file(payload: str, roots: list[Path]) -> tuple[str, str]:
    """("A", "B" or "C", a local image path) from the page script's "slot|url|stamp", or ValueError.

    The URL must name a file Gradio serves from one of `roots` (the examples, the app's pictures,
    Gradio's cache): a dropped URL never reads anything else.
    """
    slot, _, rest = (payload or "").partition("|")
    url = rest.rpartition("|")[0]
    if slot not in ("A", "B", "C") or "file=" not in url:
        raise ValueError("Only example and result tiles (or image files) can be dropped on a slot.")
    path = Path(unquote(url.split("file=", 1)[1].split("?", 1)[0]))
    path = path.resolve()
    if not path.is_file() or not any(path.is_relative_to(root.resolve()) for root in roots):
        raise ValueError("Only example and result tiles (or image files) can be dropped on a slot.")
    return slot, str(path)


def compose_tab(present: Presenter, example_paths: list[str], roots: list[Path]) -> None:
    gr.Markdown(
        "Put an image in each slot (drag a tile or an image file onto it, or click a tile below), pick an "
        "operator, and DCOH composes their hash codes; the gallery is searched with the composed code. "
        "Any change of a slot or the operator recomputes."
    )
    with gr.Row():
        slot_a = image_input("Slot A", height=200, elem_id="slot-a")
        slot_b = image_input("Slot B", height=200, elem_id="slot-b")
        slot_c = image_input("Slot C (optional: a chain)", height=200, elem_id="slot-c")
        with gr.Column():
            operator = gr.Radio(list(OPERATORS), value="union", label="Operator")
            then = gr.Radio([NO_CHAIN, *OPERATORS], value=NO_CHAIN, label="Then, with slot C: (A op B) op' C")
            active = gr.Radio(["Slot A", "Slot B", "Slot C"], value="Slot A", label="A tile click fills")
            show_bitwise = gr.Checkbox(label="Show the bitwise baseline (OR / AND / AND-NOT of the codes)")
            compose_button = gr.Button("Compose", variant="primary")
    drop_box = gr.Textbox(elem_id="drop-box", show_label=False, container=False)
    tiles = gr.Gallery(
        value=[
            (path, label_text(labels))
            for path, (_, labels) in zip(example_paths, present.engine.examples.values(), strict=True)
        ],
        label="Example images (click or drag to fill a slot)",
        columns=12,
        height=150,
        allow_preview=False,
    )
    gr.Markdown(
        "Frames: **green** = exactly the target label set T (the relevance behind the evaluation), **red** = "
        "any other set; no frame when an input is not a dataset image."
    )
    summary = gr.Markdown("Fill slots A and B to compose.")
    with gr.Row():
        composed = gr.Gallery(label="Top 20 for the composed code", columns=5, height="auto")
        bitwise = gr.Gallery(label="Bitwise baseline, top 20", columns=5, height="auto", visible=False)
    named = {"summary": summary, "composed": composed, "bitwise": bitwise}
    inputs, outputs = [slot_a, slot_b, operator, slot_c, then], [named[name] for name in COMPOSE_OUTPUTS]

    @user_errors
    def compose(image_a_path, image_b_path, operator, image_c_path=None, then=None):
        for name in (operator,) if then in (None, NO_CHAIN) else (operator, then):
            if name not in OPERATORS:
                raise ValueError(f"Unknown operator {name!r}: choose union, intersection or difference.")
        image_a = read_image(present.engine, image_a_path, "an image in slot A")
        image_b = read_image(present.engine, image_b_path, "an image in slot B")
        chain = then not in (None, NO_CHAIN)
        if chain and not image_c_path:
            raise ValueError(
                f"Put an image in slot C for the chain (A {operator} B) {then} C, or choose {NO_CHAIN}."
            )
        image_c = read_image(present.engine, image_c_path, "an image in slot C") if chain else None
        values = present.compose(image_a, image_b, operator, image_c, then if chain else None)
        return {named[name]: value for name, value in values.items()}

    def readable(path: str | None) -> str | None:
        """The slot's file if the models can take it, else None: its upload event says why, once."""
        if not path:
            return None
        try:
            present.engine.read_image(path)
        except ImageError:
            return None
        return path

    @user_errors
    def compose_when_filled(image_a_path, image_b_path, operator, image_c_path, then):
        """Every change recomputes; with a slot empty (or holding a file that is not an image) the old
        results go, so nothing on screen is stale."""
        image_a_path, image_b_path, image_c_path = map(readable, (image_a_path, image_b_path, image_c_path))
        if not image_a_path or not image_b_path or (then != NO_CHAIN and not image_c_path):
            missing = "slots A and B" if then == NO_CHAIN else "slots A, B and C"
            return {summary: f"Fill {missing} to compose.", composed: [], bitwise: []}
        return compose(image_a_path, image_b_path, operator, image_c_path, then)

    def fill_slot(active, image_a_path, image_b_path, evt: gr.SelectData):
        """A tile fills the first empty slot, else the one the radio names; the radio moves on."""
        slot = "Slot A" if not image_a_path else "Slot B" if not image_b_path else active
        path = example_paths[evt.index]
        values = {"Slot A": (path, gr.skip(), gr.skip()), "Slot B": (gr.skip(), path, gr.skip())}
        next_slot = {"Slot A": "Slot B", "Slot B": "Slot A", "Slot C": "Slot C"}[slot]
        return *values.get(slot, (gr.skip(), gr.skip(), path)), next_slot

    @user_errors
    def drop(payload):
        slot, path = dropped_file(payload, roots)
        path = present.source_image(path)
        present.engine.read_image(path)  # a dropped picture must be an image the models can take
        return tuple(path if name == slot else gr.skip() for name in "ABC")

    def check_upload(slot: str) -> Callable:
        @user_errors
        def check(path):
            """A slot's upload is checked as it arrives, one message (its `change` may fire twice)."""
            read_image(present.engine, path, f"the image in slot {slot}")

        return check

    for slot, component in zip("ABC", (slot_a, slot_b, slot_c), strict=True):
        # a refused file leaves the slot empty rather than showing a broken picture
        component.upload(check_upload(slot), component, None, api_name=False, show_progress="hidden").failure(
            lambda: None, None, component, api_name=False
        )
    tiles.select(fill_slot, [active, slot_a, slot_b], [slot_a, slot_b, slot_c, active], api_name=False)
    drop_box.change(drop, drop_box, [slot_a, slot_b, slot_c], api_name=False)
    compose_button.click(compose, inputs, outputs, api_name="compose")
    gr.on(
        [slot_a.change, slot_b.change, slot_c.change, operator.change, then.change],
        compose_when_filled,
        inputs,
        outputs,
        api_name=False,
    )
    show_bitwise.change(lambda show: gr.Gallery(visible=show), show_bitwise, bitwise, api_name=False)


def benchmarks_tab(hier_metrics: dict, dcoh_metrics: dict, files: OutputFiles) -> None:
    """The evaluation's `test` sections from the checkpoints' metrics.json, as tables and figures."""
    hier, dcoh = hier_metrics.get("test"), dcoh_metrics.get("test")

    def plot(draw: Callable[..., Figure], *args, label: str) -> None:
        figure = files.figure(draw, *args)
        gr.Image(figure, label=label, show_label=False, buttons=["fullscreen"])

    gr.Markdown("## Hierarchical hashing, query split (1000) against the gallery (10000)")
    if hier is None:
        gr.Markdown("No test results yet: run `python -m hashdemo evaluate hier`.")
    else:
        gr.Markdown(report.hier_takeaway(hier))
        gr.Markdown(report.format_tables("hier", hier), elem_classes="scroll-table")
        plot(report.frontier, hier, label="Accuracy against cost")
        with gr.Row():
            plot(report.map_vs_parameter, hier["val_grid"], hier, "L", label="map@100 against L (val)")
            plot(report.map_vs_parameter, hier["val_grid"], hier, "K_share", label="map@100 against K (val)")
            plot(report.pr_curves, hier["pr_curves"], label="Precision-recall (test)")
    gr.Markdown("## DCOH, composed queries from query-split pairs against the gallery")
    if dcoh is None:
        gr.Markdown("No test results yet: run `python -m hashdemo evaluate dcoh`.")
    else:
        gr.Markdown(report.dcoh_takeaway(dcoh))
        gr.Markdown(report.format_tables("dcoh", dcoh), elem_classes="scroll-table")
        plot(report.operator_bars, dcoh["operators"], report.DCOH_METHODS, label="mAP@100 per operator")
    with gr.Accordion("Glossary of the column names", open=False):
        gr.Markdown(report.glossary())


def build_demo(engine: Engine, examples_dir: Path, outputs_dir: Path) -> gr.Blocks:
    example_paths = write_examples(engine, examples_dir)
    files = OutputFiles(outputs_dir)
    present = Presenter(engine, files)
    with gr.Blocks(title="hashdemo: deep hashing you can see") as demo:
        gr.Markdown(
            "# hashdemo\nHierarchical hashing with CAM attention bit selection, and deep code operation "
            "hashing (DCOH), trained on Fashion-MNIST outfits. "
            "Every number comes from the shipped checkpoints."
        )
        with gr.Tab("Attention & search"):
            search_tab(demo, engine, present, example_paths)
        with gr.Tab("Compose"):
            compose_tab(
                present, example_paths, [examples_dir, outputs_dir, Path(gr.utils.get_upload_folder())]
            )
        with gr.Tab("Benchmarks"):
            benchmarks_tab(engine.hier.metrics, engine.dcoh.metrics, files)
        with gr.Tab("How it works"):
            gr.Markdown(
                HOW_IT_WORKS,
                latex_delimiters=[
                    {"left": "$$", "right": "$$", "display": True},
                    {"left": "$", "right": "$", "display": False},
                ],
            )
    return demo
