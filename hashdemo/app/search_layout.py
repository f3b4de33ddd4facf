"""The "Attention & search" tab's components, by name: the query and its controls on the left, panels 1-2
and both result rows on the right (in view at 1400x900), then the explanations and panels 3-5. The
events are hashdemo.app.search_tab's."""

from __future__ import annotations

import gradio as gr

from hashdemo.app.pin_compare import pin_layout
from hashdemo.app.presenter import COARSE_TITLE, EXPLANATIONS, RERANK_TITLE
from hashdemo.app.query_browser import query_browser_layout
from hashdemo.app.widgets import image_input, link_controls, panel
from hashdemo.checks import number_in_range
from hashdemo.service.engine import Engine
from hashdemo.service.relevance import DEFAULT_RELEVANCE, RELEVANCE

K_SLIDER_MAX = 2000  # K's top on the page (a link asking for more is refused): more only slows the re-rank


def page_params(engine, theta, top_l, n_coarse) -> tuple[float, int, int]:
    """theta, L and K checked as the page offers them: K at most K_SLIDER_MAX (a number typed past the
    slider's top is refused, never searched and then snapped back), else the engine's own ranges."""
    number_in_range(
        "K (coarse candidates)", n_coarse, 1, min(K_SLIDER_MAX, len(engine.gallery_labels)), integer=True
    )
    return engine.check_params(theta, top_l, n_coarse)


PARAMS = ("theta", "top_l", "n_coarse")  # the three sliders, in the handlers' argument order


def search_layout(engine: Engine, example_paths: list[str]) -> dict:
    gr.Markdown(
        "**Start here:** an example query is already searched. Click another example or drop your own image, "
        "then move theta, L or K: attention and both result rows follow."
    )
    with gr.Row():
        with gr.Column(scale=1):
            named = query_controls(engine, example_paths)
        with gr.Column(scale=2):
            named.update(result_panels())
    named["state"] = gr.State(None)
    named["explained"] = gr.State(None)  # the gallery id of the result the why panel explains
    return named


def query_controls(engine: Engine, example_paths: list[str]) -> dict:
    """The query box, its examples, the three parameters, the downloads, the link and pick-by-id."""
    defaults, channels = engine.defaults, engine.hier_codes.local_bits.shape[1]
    chosen = "chosen on val" if engine.hier.metrics.get("test") else "a default until the evaluation has run"
    query = image_input("Query image", height=160, elem_id="query-image")
    info = gr.Markdown()  # right under the query: its labels and every note are on the first screen
    examples = gr.Examples(
        example_paths,
        inputs=query,
        label="Example queries (query split: labels known)",
        examples_per_page=len(example_paths),
    )
    sliders = {
        "theta": (
            0.0,
            1.0,
            0.05,
            "theta (binarisation threshold)",
            "binarises M_avg and every activation map",
        ),
        "top_l": (
            1,
            channels,
            1,
            "L (selected local bits)",
            f"bits of H_l compared in the re-rank, of {channels}",
        ),
        "n_coarse": (
            1,
            K_SLIDER_MAX,
            1,
            "K (coarse candidates)",
            "candidates the global code keeps for the re-rank",
        ),
    }
    named = {"query": query, "examples": examples, "info": info}
    for name, (low, high, step, label, info) in sliders.items():
        value = defaults[{"theta": "theta", "top_l": "L", "n_coarse": "K"}[name]]
        named[name] = gr.Slider(
            low, high, value=value, step=step, label=label, info=f"{info}; {value} is {chosen}"
        )
    named["clear"] = gr.Button("Clear my box (back to the CAM region)", size="sm")
    with gr.Row():
        named["export_json"] = gr.DownloadButton("Download this result (JSON)", size="sm")
        named["export_csv"] = gr.DownloadButton("Download (CSV)", size="sm")
    named.update(link_controls("search", "Link to this view"))
    with gr.Row():  # below the sliders, which keep their place
        named["split"] = gr.Radio(["query", "gallery"], value="query", label="Pick by id from", scale=2)
        named["picked"] = gr.Number(value=0, precision=0, label="Image id", minimum=0, scale=1)
    with gr.Row():
        named["show_id"] = gr.Button("Show this image", size="sm")
        named["random_example"] = gr.Button("Random example", size="sm")
    return named


def result_panels() -> dict:
    """Panels 1-2, both result rows right under them (in view at 1400x900), the explanation of a clicked
    result, then panels 3-5."""
    named = {}
    with gr.Row():
        with gr.Column():
            named["cam"] = panel(
                "1. Averaged CAM of the global bits, M_avg (click two corners to box the object)",
                "cam",
                height=200,
            )
        with gr.Column():
            named["region"] = panel(
                "2. B_avg, its largest connected component outlined", "region", height=200
            )
    for name, title in (("coarse", COARSE_TITLE), ("reranked", RERANK_TITLE)):
        header = "coarse_header" if name == "coarse" else "rerank_header"
        named[header] = gr.Markdown(f"**{title}**", elem_id=f"{name}-header")
        # one row of ten: both rows sit on the first screen at 1400x900, under panels 1 and 2; a click
        # explains a tile below (no preview over the page)
        named[name] = gr.Gallery(
            label=title, columns=10, height="auto", elem_id=f"{name}-row", allow_preview=False
        )
    # under the row, not in its header, so that both rows stay on the first screen
    named["rerank_ties"] = gr.Markdown(elem_id="rerank-ties")
    with gr.Row(equal_height=True):
        named["relevance"] = gr.Radio(
            [(rule.words, name) for name, rule in RELEVANCE.items()],
            value=DEFAULT_RELEVANCE,
            label="Relevant means (frames, P@10, AP; the link keeps it)",
            elem_id="relevance",
            scale=2,
        )
        gr.Markdown(
            "Frames: **green** = relevant by the rule on the left, **red** = not; no frame when the rule "
            "cannot judge (an uploaded image's labels, an image without recorded items, no box). The "
            "attended item is the recorded item the CAM region sits on. AP@100 is this query's term of "
            "map@100; AP@K averages over the row's K candidates.",
            elem_id="frames-note",
        )
    with gr.Row(elem_id="why-row"):
        with gr.Column():
            named["why_image"] = panel(
                "The match: the query's region (left), where its selected bits fire in the result (right)",
                "why",
                height=200,
            )
        with gr.Column():
            named["why_text"] = gr.Markdown(EXPLANATIONS["why_text"])
            named["use_result"] = gr.Button("Search with this result as the query", size="sm")
    named["side_open"] = gr.State(False)  # the side-by-side view is computed only while open
    with gr.Accordion(
        "Side by side: every method's top 10 for this query", open=False, elem_id="side-by-side"
    ) as named["side_by_side"]:
        named["side_table"] = gr.Markdown(elem_classes="scroll-table")  # a phone scrolls it, words whole
        named["side_image"] = panel(
            "Top 10 of each method (rows as in the table)", "side", height=None, wide=True
        )
    named.update(pin_layout())
    named.update(query_browser_layout())
    named["maps"] = gr.Gallery(
        label="3. Activation maps of the top-scoring Conv7 feature maps", columns=6, height=300
    )
    named["scores"] = panel("Overlap scores of all Conv7 maps", "scores", height=None, wide=True)
    named["strip"] = panel(
        "4. Codes: H_g, then H_l in rows of 64 (selected bits framed; click a bit)",
        "strip",
        height=None,
        wide=True,
    )
    with gr.Row():
        with gr.Column():
            named["bit_view"] = panel(
                "5. The clicked bit: its own CAM (H_g) or activation map (H_l)", "bit", height=200
            )
        named["bit_text"] = gr.Markdown(EXPLANATIONS["bit_text"])
    return named
