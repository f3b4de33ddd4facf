"""The Gradio interface: layout, input checks and formatting over one `Engine`.

Handlers validate (raising `gr.Error` with a sentence), make one engine call and format.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
from PIL import Image, UnidentifiedImageError

from hashdemo import viz
from hashdemo.data import MAX_ITEMS
from hashdemo.engine import Engine
from hashdemo.images import MAX_PIXELS, NOT_AN_IMAGE, ImageError, load_image
from hashdemo.models import OPERATORS


def image_input(label: str, height: int) -> gr.Image:
    """An image input that hands the handler the raw file (hashdemo.images converts every mode)
    and answers a bad upload with a sentence.

    Gradio opens an upload with PIL before any handler runs; a file that is not an image would
    otherwise surface as a bare "Error" badge. The check is wrapped on the instance: a subclass of
    a Gradio component makes Gradio write a .pyi stub next to this module at import time.
    """
    component = gr.Image(
        label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], height=height
    )
    check = component.preprocess

    def preprocess(payload):
        try:
            return check(payload)
        except Image.DecompressionBombError:
            raise gr.Error(f"{label}: images over {MAX_PIXELS // 10**6} megapixels are refused.") from None
        except (UnidentifiedImageError, OSError):
            raise gr.Error(f"{label}: {NOT_AN_IMAGE}") from None

    component.preprocess = preprocess
    return component


CSS = ".caption-label { white-space: normal; font-size: 11px; line-height: 1.2; max-width: 96%; }"


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
        # fast PNG compression: the pictures are small and made on every request
        bgr = np.ascontiguousarray(image[..., ::-1])
        data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
        path = self.directory / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)


SHOWN_RESULTS = 10  # tiles per result row
SHOWN_MAPS = 12  # activation maps shown, highest score first
COARSE_TITLE = "Global code only (top-K)"
RERANK_TITLE = "Re-ranked on the L attention bits"
MAX_UPLOAD = "10mb"


def read_image(path: str | None, what: str) -> np.ndarray:
    if not path:
        raise gr.Error(f"Please provide {what}: upload or drop an image file, or click an example.")
    try:
        return load_image(path)
    except ImageError as error:
        raise gr.Error(f"{what.capitalize()}: {error}") from None


def check_params(engine: Engine, theta, top_l, top_k) -> tuple[float, int, int]:
    """theta, L and K as numbers in range, or a gr.Error naming the valid range (never clamped)."""
    channels, gallery = engine.hier_codes.local_bits.shape[1], len(engine.gallery_labels)
    rules = (
        ("theta", theta, float, 0.0, 1.0, ""),
        ("L", top_l, int, 1, channels, ", the number of local bits"),
        ("K", top_k, int, 1, gallery, ", the gallery size"),
    )
    values = []
    for name, value, kind, low, high, why in rules:
        try:
            number = kind(float(value))
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise gr.Error(f"{name} must be between {low:g} and {high:g}{why} (got {value!r}).")
        values.append(number)
    return tuple(values)


class Presenter:
    """Engine results as the components' values: pictures as files, captions, headers."""

    def __init__(self, engine: Engine, files: OutputFiles):
        self.engine, self.files = engine, files
        # a gallery tile's picture depends only on (id, frame): encode each one once
        self.tile_picture = functools.lru_cache(maxsize=4096)(self._tile_picture)

    def _tile_picture(self, gallery_id: int, relevant: bool | None) -> str:
        return self.files(viz.framed(self.engine.gallery_images[gallery_id], relevant))

    def tile(self, gallery_id: int, caption: str, relevant: bool | None) -> tuple[str, str]:
        labels = self.engine.gallery_labels[gallery_id]
        return self.tile_picture(int(gallery_id), relevant), f"{self.engine.label_text(labels)} · {caption}"

    def result_row(self, title: str, ids, captions, query_labels) -> tuple[str, list]:
        """A header with the row's P@10 (when the query's labels are known) and its framed tiles."""
        ids = ids[:SHOWN_RESULTS]
        relevant = [
            None if query_labels is None else bool((self.engine.gallery_labels[i] & query_labels).any())
            for i in ids
        ]
        p10 = (
            "P@10 unknown: the labels of an uploaded image are not known"
            if query_labels is None
            else f"P@10 = {np.mean(relevant):.1f}"
        )
        return f"**{title}** · {p10}", [
            self.tile(i, c, r) for i, c, r in zip(ids, captions, relevant, strict=False)
        ]

    def search(self, state: dict, theta: float, top_l: int, top_k: int) -> tuple:
        engine, image, labels = self.engine, state["image"], state["labels"]
        result = engine.search_encoded(state["encoded"], theta, top_l, top_k)
        att = result.attention
        chosen = set(att.selected.tolist())
        maps = [
            (
                self.files(viz.heat_overlay(image, att.activation_maps[c], alpha=0.6, size=128)),
                f"map {c} · s={att.scores[c]}" + (" · selected" if c in chosen else ""),
            )
            for c in np.argsort(-att.scores, kind="stable")[:SHOWN_MAPS]
        ]
        coarse = self.result_row(
            COARSE_TITLE, result.coarse_ids, [f"d_g={d}" for d in result.coarse_distances], labels
        )
        reranked = self.result_row(
            RERANK_TITLE,
            result.reranked_ids,
            [
                f"d_L={d} · d_g={g}"
                for d, g in zip(result.reranked_distances, result.reranked_global_distances, strict=True)
            ],
            labels,
        )
        known = (
            "labels unknown (not a dataset image)"
            if labels is None
            else f"labels: **{engine.label_text(labels)}**"
        )
        info = (
            f"Query {known}. Selected {top_l} of {len(result.local_bits)} local bits: "
            f"`{', '.join(map(str, att.selected.tolist()))}`"
        )
        return (
            self.files(viz.heat_overlay(image, att.m_avg)),
            self.files(viz.region_outline(att.b_avg, att.region)),
            maps,
            self.files(viz.scores_chart(att.scores, att.selected)),
            self.files(viz.code_strip(result.global_bits, result.local_bits, att.selected)),
            info,
            *coarse,
            *reranked,
            {**state, "reranked_ids": result.reranked_ids[:SHOWN_RESULTS]},
        )

    def why(self, state: dict, index: int, theta: float, top_l: int) -> tuple[str, str]:
        engine = self.engine
        gallery_id = int(state["reranked_ids"][index])
        att, local_bits = engine.gallery_attention(gallery_id, theta, top_l)
        query = engine.attention(state["encoded"], theta, top_l)
        query_bits = state["encoded"].local_bits[0]
        agree = [int(c) for c in query.selected if local_bits[c] == query_bits[c]]
        text = (
            f"Result {index + 1} (gallery #{gallery_id}, "
            f"{engine.label_text(engine.gallery_labels[gallery_id])}) "
            f"agrees with the query on **{len(agree)} of {len(query.selected)}** selected bits: `{agree}`. "
            "Its own attention region is outlined."
        )
        return self.files(viz.image_with_region(engine.gallery_images[gallery_id], att.region)), text

    def compose(self, image_a: np.ndarray, image_b: np.ndarray, operator: str) -> tuple[str, list, list]:
        engine = self.engine
        labels_a, labels_b = engine.known_labels(image_a), engine.known_labels(image_b)
        result = engine.compose(image_a, image_b, operator)
        target = (
            None
            if labels_a is None or labels_b is None
            else engine.target_labels(operator, labels_a, labels_b)
        )

        def tiles(ids, distances) -> list:
            out = []
            for gallery_id, distance in zip(ids, distances, strict=True):
                labels = engine.gallery_labels[gallery_id]
                caption, exact = f"d={distance}", None
                if target is not None:
                    caption += f" · Jaccard {(labels & target).sum() / max(1, (labels | target).sum()):.2f}"
                    exact = bool((labels == target).all())
                out.append(self.tile(gallery_id, caption, exact))
            return out

        def known(labels) -> str:
            return engine.label_text(labels) if labels is not None else "labels unknown"

        summary = (
            f"**A:** {known(labels_a)} · **B:** {known(labels_b)}\n\n"
            f"**Target set T = A {operator} B:** "
            f"{'unknown (an input is not a dataset image)' if target is None else known(target)}\n\n"
            f"**Predicted from the composed code:** {engine.label_text(result.predicted_probs > 0.5)}"
        )
        if target is not None and target.sum() > MAX_ITEMS:
            summary += (
                f"\n\nT has {target.sum()} labels and gallery images hold at most {MAX_ITEMS}: "
                "no exact match exists."
            )
        return (
            summary,
            tiles(result.ids, result.distances),
            tiles(result.bitwise_ids, result.bitwise_distances),
        )


def build_demo(engine: Engine, examples_dir: Path, outputs_dir: Path) -> gr.Blocks:
    examples_dir.mkdir(parents=True, exist_ok=True)
    example_paths = []
    for name, (image, _) in engine.examples.items():
        path = examples_dir / f"{name}.png"
        if not path.exists():
            Image.fromarray(image).save(path)
        example_paths.append(str(path))
    present = Presenter(engine, OutputFiles(outputs_dir))
    channels = engine.hier_codes.local_bits.shape[1]
    d = engine.defaults

    def search(image_path, theta, top_l, top_k):
        theta, top_l, top_k = check_params(engine, theta, top_l, top_k)
        image = read_image(image_path, "a query image")
        state = {"image": image, "labels": engine.known_labels(image), "encoded": engine.encode_hier(image)}
        return present.search(state, theta, top_l, top_k)

    def rerank(state, theta, top_l, top_k):
        if not state:  # moving a slider before choosing a query just sets it
            return (gr.skip(),) * len(outputs)
        return present.search(state, *check_params(engine, theta, top_l, top_k))

    def why(state, theta, top_l, evt: gr.SelectData):
        if not state or "reranked_ids" not in state:
            raise gr.Error("Run a search first.")
        theta, top_l, _ = check_params(engine, theta, top_l, 1)
        return present.why(state, evt.index, theta, top_l)

    def compose(image_a_path, image_b_path, operator):
        if operator not in OPERATORS:
            raise gr.Error(f"Unknown operator {operator!r}: choose union, intersection or difference.")
        image_a = read_image(image_a_path, "an image in slot A")
        image_b = read_image(image_b_path, "an image in slot B")
        return present.compose(image_a, image_b, operator)

    def compose_when_filled(image_a_path, image_b_path, operator):
        if not image_a_path or not image_b_path:
            return gr.skip(), gr.skip(), gr.skip()  # changing the operator before filling both slots is fine
        return compose(image_a_path, image_b_path, operator)

    def fill_slot(active, image_a_path, image_b_path, evt: gr.SelectData):
        """A tile fills the first empty slot, else the one the radio names; the radio moves on."""
        slot = "Slot A" if not image_a_path else "Slot B" if not image_b_path else active
        path = example_paths[evt.index]
        return (path, gr.skip(), "Slot B") if slot == "Slot A" else (gr.skip(), path, "Slot A")

    with gr.Blocks(title="hashdemo: deep hashing you can see") as demo:
        gr.Markdown(
            "# hashdemo\nHierarchical hashing with CAM attention bit selection, and deep code operation "
            "hashing (DCOH), "
            "trained on Fashion-MNIST outfits. Every number comes from the shipped checkpoints."
        )
        with gr.Tab("Attention & search"):
            state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1):
                    query = image_input("Query image", height=256)
                    gr.Examples(
                        example_paths,
                        inputs=query,
                        label="Example queries (query split: labels known)",
                        examples_per_page=len(example_paths),
                    )
                    theta = gr.Slider(
                        0.0, 1.0, value=d["theta"], step=0.05, label="theta (binarisation threshold)"
                    )
                    top_l = gr.Slider(1, channels, value=d["L"], step=1, label="L (selected local bits)")
                    top_k = gr.Slider(1, 2000, value=d["K"], step=1, label="K (coarse candidates)")
                    info = gr.Markdown()
                with gr.Column(scale=2):
                    with gr.Row():
                        cam_view = gr.Image(label="1. Averaged CAM of the global bits (M_avg)", height=256)
                        region_view = gr.Image(
                            label="2. B_avg, largest connected component outlined", height=256
                        )
                    maps_view = gr.Gallery(
                        label="3. Activation maps of the top-scoring Conv7 feature maps",
                        columns=6,
                        height=300,
                    )
                    scores_view = gr.Image(label="Overlap scores of all Conv7 maps")
                    strip_view = gr.Image(
                        label="4. Code strips: H_g (top), H_l (bottom, selected bits in gold)"
                    )
            with gr.Row():
                with gr.Column():
                    coarse_header = gr.Markdown(f"**{COARSE_TITLE}**")
                    coarse_view = gr.Gallery(label=COARSE_TITLE, columns=5, height=340)
                with gr.Column():
                    rerank_header = gr.Markdown(f"**{RERANK_TITLE}**")
                    rerank_view = gr.Gallery(label=RERANK_TITLE, columns=5, height=340)
            with gr.Row():
                why_image = gr.Image(label="Why this result: its own attention region", height=200)
                why_text = gr.Markdown("Select a re-ranked result to see which selected bits it agrees on.")
            outputs = [
                cam_view,
                region_view,
                maps_view,
                scores_view,
                strip_view,
                info,
                coarse_header,
                coarse_view,
                rerank_header,
                rerank_view,
                state,
            ]
            query.change(search, [query, theta, top_l, top_k], outputs, api_name="search")
            for slider in (theta, top_l, top_k):  # a drag, a typed value: the last one wins
                slider.change(
                    rerank,
                    [state, theta, top_l, top_k],
                    outputs,
                    api_name=False,
                    trigger_mode="always_last",
                    show_progress="hidden",
                )
            rerank_view.select(why, [state, theta, top_l], [why_image, why_text], api_name=False)

        with gr.Tab("Compose"):
            gr.Markdown(
                "Put an image in each slot (upload, drop, or click a tile below), pick an operator, and DCOH "
                "composes their hash codes; the gallery is searched with the composed code."
            )
            with gr.Row():
                slot_a, slot_b = (image_input(name, height=200) for name in ("Slot A", "Slot B"))
                with gr.Column():
                    operator = gr.Radio(list(OPERATORS), value="union", label="Operator")
                    active = gr.Radio(["Slot A", "Slot B"], value="Slot A", label="A tile click fills")
                    show_bitwise = gr.Checkbox(
                        label="Show the bitwise baseline (OR / AND / AND-NOT of the codes)"
                    )
                    compose_button = gr.Button("Compose", variant="primary")
            tiles_view = gr.Gallery(
                value=example_paths,
                label="Example images (click to fill a slot)",
                columns=12,
                height=150,
                allow_preview=False,
            )
            summary = gr.Markdown()
            with gr.Row():
                composed_view = gr.Gallery(label="Top 20 for the composed code", columns=5, height="auto")
                bitwise_view = gr.Gallery(
                    label="Bitwise baseline, top 20", columns=5, height="auto", visible=False
                )
            tiles_view.select(fill_slot, [active, slot_a, slot_b], [slot_a, slot_b, active], api_name=False)
            compose_inputs, compose_outputs = (
                [slot_a, slot_b, operator],
                [summary, composed_view, bitwise_view],
            )
            compose_button.click(compose, compose_inputs, compose_outputs, api_name="compose")
            operator.change(compose_when_filled, compose_inputs, compose_outputs, api_name=False)
            show_bitwise.change(
                lambda show: gr.Gallery(visible=show), show_bitwise, bitwise_view, api_name=False
            )

        with gr.Tab("Benchmarks"):
            benchmark_tables(engine.hier.metrics, engine.dcoh.metrics)

        with gr.Tab("How it works"):
            gr.Markdown(
                HOW_IT_WORKS,
                latex_delimiters=[
                    {"left": "$$", "right": "$$", "display": True},
                    {"left": "$", "right": "$", "display": False},
                ],
            )
    return demo


def benchmark_tables(hier_metrics: dict, dcoh_metrics: dict) -> None:
    """The Benchmarks tab's content, from the `test` sections the evaluation wrote into metrics.json."""
    from hashdemo.evaluate import format_tables

    hier, dcoh = hier_metrics.get("test"), dcoh_metrics.get("test")
    gr.Markdown("## Hierarchical hashing, query split (1000) against the gallery (10000)")
    if hier is None:
        gr.Markdown("No test results yet: run `python -m hashdemo.evaluate hier`.")
    else:
        gr.Markdown(format_tables("hier", hier))
        with gr.Row():
            gr.Plot(
                viz.map_vs_parameter(hier["val_grid"], hier, "L"),
                label="mAP against L (val)",
                show_label=False,
            )
            gr.Plot(
                viz.map_vs_parameter(hier["val_grid"], hier, "K"),
                label="mAP against K (val)",
                show_label=False,
            )
            gr.Plot(viz.pr_curves(hier["pr_curves"]), label="Precision-recall (test)", show_label=False)
    gr.Markdown("## DCOH, composed queries from query-split pairs against the gallery")
    if dcoh is None:
        gr.Markdown("No test results yet: run `python -m hashdemo.evaluate dcoh`.")
    else:
        gr.Markdown(format_tables("dcoh", dcoh))
        gr.Plot(
            viz.operator_bars(dcoh["operators"], ("dcoh", "dcoh_no_adv", "bitwise", "label_route", "oracle")),
            label="mAP@100 per operator",
            show_label=False,
        )


HOW_IT_WORKS = r"""
## 1. Hierarchical hashing with attention bit selection

A seven-layer CNN ends in **Conv7**, $C$ feature maps $I_1..I_C$ (8x8 each). Its spatial means go through a
per-channel affine map: the sign of each is one bit of the **local code** $H_l$ ($C$ bits: "map $c$ fires").
A linear map of the same local pre-activation gives the **global code** $H_g$ ($H < C$ bits).
Both are trained with a pairwise likelihood graded by label overlap (Jaccard), a quantization term and
label prediction (`hashdemo/train.py`, `hashdemo/losses.py`).

Because each global bit is linear in the pooled Conv7 maps, its class activation map is exact:
$$M_j = \sum_c w_{jc} I_c$$
(`hashdemo/models.py: HashNet.cam_weights`, `hashdemo/cam.py: bit_cams`). Each CAM is signed by the value the
bit takes for this image. Then, per query (`hashdemo/cam.py: attend`):

1. $M_{avg} = \mathrm{mean}_j M_j$, normalised to [0, 1]; $B_{avg} = [M_{avg} > \theta]$; its **largest
   connected component** is the attention region (`attention_region`, OpenCV).
2. Each Conv7 map, normalised and upsampled, is its activation map $AM_c$; $B_c = [AM_c > \theta]$ and
   $$s_c = \mathrm{sum}(B_c \wedge B_{avg}) \quad (2.4)$$ (`feature_map_scores`).
3. The $L$ maps with the highest scores (ties by channel index) give the selected bits $\Psi_q$
   (`select_bits`).

**Search** (`hashdemo/index.py: hierarchical_search`): rank the gallery by Hamming distance on $H_g$ and keep
the top $K$; re-rank those by $d_H(\Psi_q(H_q), \Psi_q(H_i))$ (2.5), ties by the global distance, then id.

## 2. Deep Code Operation Hashing (DCOH)

A hash net $h(x)$ gives $K$-bit codes. Three operators are linear maps on two concatenated codes,
$$h_{x_1 \oplus x_2} = \tanh(W_\oplus [h(x_1), h(x_2)])$$ and likewise for $\otimes$ (intersection) and
$\ominus$ (difference) (`hashdemo/models.py: CodeOperators`). Their labels are $l_1 \cup l_2$, $l_1 \cap l_2$,
and for difference $l_1 - (l_1 \cap l_2)$ if $|l_1| > |l_1 \cap l_2|$, else $l_1$ (`hashdemo/label_ops.py`).
Difference is trained cascaded after union, $W_\ominus[h_{x_1 \oplus x_2}, h(x_2)]$ (3.6), and also on real
pairs that share a label. Three losses (`hashdemo/train.py: DCOHTraining`):

1. **multi-level similarity**: the pairwise likelihood with Jaccard targets among real codes, and between
   each generated code and running-mean prototypes of the real codes of every label set;
2. **semantic discriminability**: a linear classifier on codes predicts the labels, of generated codes too;
3. **distribution matching**: a discriminator tells real binary codes from operator outputs (binarised with
   a straight-through sign); the operators learn to fool it.

The operators act on the $\pm 1$ codes they get at query time, and their losses train the operators and the
classifier, not $h(x)$.

A composed query (two images and an operator) is answered by Hamming search of the composed code against the
gallery's real codes (`hashdemo/engine.py: Engine.compose`).
"""
