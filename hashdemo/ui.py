"""The Gradio interface: layout, input checks and formatting over one `Engine`.

Handlers validate (raising `gr.Error` with a sentence), make one engine call and format.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from hashdemo import viz
from hashdemo.engine import Engine
from hashdemo.images import ImageError, load_image
from hashdemo.models import OPERATORS

SHOWN_RESULTS = 10  # tiles per result row
SHOWN_MAPS = 12  # activation maps shown, highest score first
MAX_UPLOAD = "10mb"


def read_image(path: str | None, what: str) -> np.ndarray:
    if not path:
        raise gr.Error(f"Please provide {what}: upload or drop an image file, or click an example.")
    try:
        return load_image(path)
    except ImageError as error:
        raise gr.Error(f"{what.capitalize()}: {error}") from None


def check_params(engine: Engine, theta: float, top_l: float, top_k: float) -> tuple[float, int, int]:
    channels, gallery = engine.hier_codes.local_bits.shape[1], len(engine.gallery_labels)
    if theta is None or not 0.0 <= float(theta) <= 1.0:
        raise gr.Error(f"theta must be between 0 and 1 (got {theta}).")
    if top_l is None or not 1 <= int(top_l) <= channels:
        raise gr.Error(f"L must be between 1 and {channels}, the number of local bits (got {top_l}).")
    if top_k is None or not 1 <= int(top_k) <= gallery:
        raise gr.Error(f"K must be between 1 and {gallery}, the gallery size (got {top_k}).")
    return float(theta), int(top_l), int(top_k)


def result_tiles(engine: Engine, ids, captions, query_labels) -> tuple[list, str]:
    """Gallery tiles (framed green/red when the query's labels are known) and the row's P@10."""
    tiles, hits = [], []
    for gallery_id, caption in zip(ids[:SHOWN_RESULTS], captions, strict=False):
        labels = engine.gallery_labels[gallery_id]
        relevant = None if query_labels is None else bool((labels & query_labels).any())
        hits.append(relevant)
        tiles.append(
            (
                viz.framed(engine.gallery_images[gallery_id], relevant),
                f"{engine.label_text(labels)} · {caption}",
            )
        )
    p10 = (
        "P@10 unknown (labels of an uploaded image are not known)"
        if query_labels is None
        else f"P@10 = {np.mean(hits):.1f}"
    )
    return tiles, p10


def present_search(engine: Engine, state: dict, theta: float, top_l: int, top_k: int) -> tuple:
    image, labels = state["image"], state["labels"]
    result = engine.search_encoded(state["encoded"], theta, top_l, top_k)
    att = result.attention
    chosen = set(att.selected.tolist())
    order = np.argsort(-att.scores, kind="stable")[:SHOWN_MAPS]
    maps = [
        (
            viz.heat_overlay(image, att.activation_maps[c], alpha=0.6),
            f"map {c} · s={att.scores[c]}" + (" · selected" if c in chosen else ""),
        )
        for c in order
    ]
    coarse, coarse_p10 = result_tiles(
        engine, result.coarse_ids, [f"d_g={d}" for d in result.coarse_distances], labels
    )
    reranked, rerank_p10 = result_tiles(
        engine,
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
    state = {**state, "reranked_ids": result.reranked_ids[:SHOWN_RESULTS]}
    return (
        viz.heat_overlay(image, att.m_avg),
        viz.region_outline(att.b_avg, att.region),
        maps,
        viz.scores_chart(att.scores, att.selected),
        viz.code_strip(result.global_bits, result.local_bits, att.selected),
        info,
        f"**Global code only (top-K)** · {coarse_p10}",
        coarse,
        f"**Re-ranked on the L attention bits** · {rerank_p10}",
        reranked,
        state,
    )


def build_demo(engine: Engine, examples_dir: Path) -> gr.Blocks:
    examples_dir.mkdir(parents=True, exist_ok=True)
    example_paths = []
    for name, (image, _) in engine.examples.items():
        path = examples_dir / f"{name}.png"
        if not path.exists():
            Image.fromarray(image).save(path)
        example_paths.append(str(path))
    channels = engine.hier_codes.local_bits.shape[1]
    d = engine.defaults

    def search(image_path, theta, top_l, top_k):
        theta, top_l, top_k = check_params(engine, theta, top_l, top_k)
        image = read_image(image_path, "a query image")
        state = {"image": image, "labels": engine.known_labels(image), "encoded": engine.encode_hier(image)}
        return present_search(engine, state, theta, top_l, top_k)

    def rerank(state, theta, top_l, top_k):
        if not state:
            raise gr.Error("Choose a query image first.")
        return present_search(engine, state, *check_params(engine, theta, top_l, top_k))

    def why(state, theta, top_l, evt: gr.SelectData):
        if not state or "reranked_ids" not in state:
            raise gr.Error("Run a search first.")
        gallery_id = int(state["reranked_ids"][evt.index])
        att, local_bits = engine.gallery_attention(gallery_id, float(theta), int(top_l))
        query = engine.attention(state["encoded"], float(theta), int(top_l))
        agree = [int(c) for c in query.selected if local_bits[c] == state["encoded"].local_bits[0][c]]
        text = (
            f"Result {evt.index + 1} (gallery #{gallery_id}, {engine.label_text(engine.gallery_labels[gallery_id])}) "
            f"agrees with the query on **{len(agree)} of {len(query.selected)}** selected bits: `{agree}`. "
            "Its own attention region is outlined."
        )
        return viz.image_with_region(engine.gallery_images[gallery_id], att.region), text

    def compose(image_a_path, image_b_path, operator):
        if operator not in OPERATORS:
            raise gr.Error(f"Unknown operator {operator!r}: choose union, intersection or difference.")
        image_a = read_image(image_a_path, "an image in slot A")
        image_b = read_image(image_b_path, "an image in slot B")
        labels_a, labels_b = engine.known_labels(image_a), engine.known_labels(image_b)
        result = engine.compose(image_a, image_b, operator)
        target = (
            None
            if labels_a is None or labels_b is None
            else engine.target_labels(operator, labels_a, labels_b)
        )
        predicted = (result.predicted_probs > 0.5).astype(np.uint8)

        def tiles(ids, distances):
            out = []
            for gallery_id, distance in zip(ids, distances, strict=True):
                labels = engine.gallery_labels[gallery_id]
                caption = f"{engine.label_text(labels)} · d={distance}"
                if target is not None:
                    jaccard = (labels & target).sum() / max(1, (labels | target).sum())
                    caption += f" · Jaccard {jaccard:.2f}"
                out.append(
                    (
                        viz.framed(
                            engine.gallery_images[gallery_id],
                            None if target is None else bool((labels == target).all()),
                        ),
                        caption,
                    )
                )
            return out

        summary = (
            f"**A:** {engine.label_text(labels_a) if labels_a is not None else 'labels unknown'} · "
            f"**B:** {engine.label_text(labels_b) if labels_b is not None else 'labels unknown'}\n\n"
            f"**Target set T = A {operator} B:** {engine.label_text(target) if target is not None else 'unknown (an input is not a dataset image)'}\n\n"
            f"**Predicted from the composed code:** {engine.label_text(predicted)}"
        )
        return (
            summary,
            tiles(result.ids, result.distances),
            tiles(result.bitwise_ids, result.bitwise_distances),
        )

    def fill_slot(active, evt: gr.SelectData):
        path = example_paths[evt.index]
        if active == "Slot A":
            return path, gr.skip(), "Slot B"
        return gr.skip(), path, "Slot A"

    with gr.Blocks(title="hashdemo: deep hashing you can see") as demo:
        gr.Markdown(
            "# hashdemo\nHierarchical hashing with CAM attention bit selection, and deep code operation hashing (DCOH), "
            "trained on Fashion-MNIST outfits. Every number comes from the shipped checkpoints."
        )
        with gr.Tab("Attention & search"):
            state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1):
                    query = gr.Image(
                        label="Query image", type="filepath", sources=["upload", "clipboard"], height=256
                    )
                    gr.Examples(
                        example_paths, inputs=query, label="Example queries (query split: labels known)"
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
                    scores_view = gr.Plot(label="Overlap scores of all Conv7 maps")
                    strip_view = gr.Image(
                        label="4. Code strips: H_g (top), H_l (bottom, selected bits in gold)"
                    )
            coarse_header = gr.Markdown("**Global code only (top-K)**")
            coarse_view = gr.Gallery(label="Global code only (top-K)", columns=SHOWN_RESULTS, height=220)
            rerank_header = gr.Markdown("**Re-ranked on the L attention bits**")
            rerank_view = gr.Gallery(
                label="Re-ranked on the L attention bits", columns=SHOWN_RESULTS, height=220
            )
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
            for slider in (theta, top_l, top_k):
                slider.release(rerank, [state, theta, top_l, top_k], outputs, api_name=False)
            rerank_view.select(why, [state, theta, top_l], [why_image, why_text], api_name=False)

        with gr.Tab("Compose"):
            gr.Markdown(
                "Put an image in each slot (upload, drop, or click a tile below), pick an operator, and DCOH "
                "composes their hash codes; the gallery is searched with the composed code."
            )
            with gr.Row():
                slot_a = gr.Image(
                    label="Slot A", type="filepath", sources=["upload", "clipboard"], height=200
                )
                slot_b = gr.Image(
                    label="Slot B", type="filepath", sources=["upload", "clipboard"], height=200
                )
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
                height=140,
                allow_preview=False,
            )
            summary = gr.Markdown()
            composed_view = gr.Gallery(label="Top 20 for the composed code", columns=10, height=300)
            bitwise_view = gr.Gallery(label="Bitwise baseline, top 20", columns=10, height=300, visible=False)
            tiles_view.select(fill_slot, [active], [slot_a, slot_b, active], api_name=False)
            compose_inputs, compose_outputs = (
                [slot_a, slot_b, operator],
                [summary, composed_view, bitwise_view],
            )
            compose_button.click(compose, compose_inputs, compose_outputs, api_name="compose")
            operator.change(compose, compose_inputs, compose_outputs, api_name=False)
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
            gr.Plot(viz.map_vs_parameter(hier["val_grid"], hier, "L"), label="mAP against L (val)")
            gr.Plot(viz.map_vs_parameter(hier["val_grid"], hier, "K"), label="mAP against K (val)")
            gr.Plot(viz.pr_curves(hier["pr_curves"]), label="Precision-recall (test)")
    gr.Markdown("## DCOH, composed queries from query-split pairs against the gallery")
    if dcoh is None:
        gr.Markdown("No test results yet: run `python -m hashdemo.evaluate dcoh`.")
    else:
        gr.Markdown(format_tables("dcoh", dcoh))
        gr.Plot(
            viz.operator_bars(dcoh["operators"], ("dcoh", "dcoh_no_adv", "bitwise", "label_route", "oracle")),
            label="mAP@100 per operator",
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
3. The $L$ maps with the highest scores (ties by channel index) give the selected bits $\Psi_q$ (`select_bits`).

**Search** (`hashdemo/index.py: hierarchical_search`): rank the gallery by Hamming distance on $H_g$ and keep
the top $K$; re-rank those by $d_H(\Psi_q(H_q), \Psi_q(H_i))$ (2.5), ties by the global distance, then id.

## 2. Deep Code Operation Hashing (DCOH)

A hash net $h(x)$ gives $K$-bit codes. Three operators are linear maps on two concatenated codes,
$$h_{x_1 \oplus x_2} = \tanh(W_\oplus [h(x_1), h(x_2)])$$ and likewise for $\otimes$ (intersection) and
$\ominus$ (difference) (`hashdemo/models.py: CodeOperators`). Their labels are $l_1 \cup l_2$, $l_1 \cap l_2$,
and for difference $l_1 - (l_1 \cap l_2)$ if $|l_1| > |l_1 \cap l_2|$, else $l_1$ (`hashdemo/label_ops.py`).
Difference is trained cascaded after union, $W_\ominus[h_{x_1 \oplus x_2}, h(x_2)]$ (3.6), and also on real
pairs that share a label. Three losses (`hashdemo/train.py: DCOHTraining`):

1. **multi-level similarity**: the pairwise likelihood with Jaccard targets, for real codes and for generated
   codes against real ones with the operator's label;
2. **semantic discriminability**: a linear classifier on codes predicts the labels, of generated codes too;
3. **distribution matching**: a discriminator tells real codes from operator outputs; the operators learn
   to fool it.

A composed query (two images and an operator) is answered by Hamming search of the composed code against the
gallery's real codes (`hashdemo/engine.py: Engine.compose`).
"""
