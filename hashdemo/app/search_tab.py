"""The "Attention & search" tab: a query, its attention (panels 1-5, the attention steps of
docs/methods.md, "Method 1: hierarchical hashing with CAM attention bit selection") and both result
rows; theta, L and K re-run attention and ranking without re-encoding; two clicks box the object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import gradio as gr
import numpy as np

from hashdemo.app import pictures
from hashdemo.app.links import parse_link, view_link
from hashdemo.app.presenter import COARSE_TITLE, RERANK_TITLE, SEARCH_OUTPUTS, Presenter
from hashdemo.app.state import SearchState
from hashdemo.app.widgets import image_input, image_path, panel, read_image, user_errors
from hashdemo.service.engine import Engine


def search_tab(demo: gr.Blocks, engine: Engine, present: Presenter, example_paths: list[str]) -> None:
    """The layout, then the events: every handler validates, makes one engine call and formats."""
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
    show = shower(engine, present, named)
    search = wire_queries(demo, engine, present, example_paths, named, show)
    wire_clicks(engine, present, named, show)
    wire_picks(engine, present, named, search)


def query_controls(engine: Engine, example_paths: list[str]) -> dict:
    """The query box, its examples, the three parameters and the notes beside them."""
    defaults, channels = engine.defaults, engine.hier_codes.local_bits.shape[1]
    chosen = "chosen on val" if engine.hier.metrics.get("test") else "a default until the evaluation has run"
    query = image_input("Query image", height=160)
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
        "n_coarse": (1, 2000, 1, "K (coarse candidates)", "candidates the global code keeps for the re-rank"),
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
    named["link"] = gr.Textbox(
        label="Link to this view (add it to the page's address)",
        interactive=False,
        buttons=["copy"],
        max_lines=1,
    )
    with gr.Row():  # below the sliders, which keep their place
        named["split"] = gr.Radio(["query", "gallery"], value="query", label="Pick by id from", scale=2)
        named["picked"] = gr.Number(value=0, precision=0, label="Image id", minimum=0, scale=1)
    with gr.Row():
        named["show_id"] = gr.Button("Show this image", size="sm")
        named["random_example"] = gr.Button("Random example", size="sm")
    return named


def result_panels() -> dict:
    """Panels 1-2, both result rows right under them (in view at 1400x900), then panels 3-5."""
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
        named[f"{name[:6] if name == 'coarse' else 'rerank'}_header"] = gr.Markdown(f"**{title}**")
        # one row of ten: both rows sit on the first screen at 1400x900, under panels 1 and 2
        named[name] = gr.Gallery(label=title, columns=10, height="auto", elem_id=f"{name}-row")
    gr.Markdown(
        "Frames: **green** = shares a label with the query (the relevance behind P@10), "
        "**red** = shares none; no frame when the query's labels are unknown (an uploaded image)."
    )
    with gr.Row():
        with gr.Column():
            named["why_image"] = panel("Why this result: its own attention region", "why", height=200)
        named["why_text"] = gr.Markdown(EXPLANATIONS["why_text"])
    with gr.Accordion(
        "Side by side: every method's top 10 for this query", open=False, elem_id="side-by-side"
    ):
        named["side_table"] = gr.Markdown()
        named["side_image"] = panel(
            "Top 10 of each method (rows as in the table)", "side", height=None, wide=True
        )
    named["maps"] = gr.Gallery(
        label="3. Activation maps of the top-scoring Conv7 feature maps", columns=6, height=300
    )
    named["scores"] = panel("Overlap scores of all Conv7 maps", "scores", height=None)
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


EXPLANATIONS = {  # the panels that explain one result or one bit, and what they show before a click
    "why_image": None,
    "why_text": "Select a re-ranked result to see which selected bits it agrees on.",
    "bit_view": None,
    "bit_text": "Click a bit in the code rows to see where it looks.",
}


def after_search(engine: Engine, present: Presenter, named: dict) -> Callable:
    """What follows every new search (query, parameters, box): the previous result's explanations are
    cleared, none is left stale, the side-by-side view is this query's, and the download buttons get
    this result's files."""
    outputs = [
        named[name]
        for name in (*EXPLANATIONS, "export_json", "export_csv", "link", "side_image", "side_table")
    ]

    def refresh(state) -> dict:
        cleared = {named[name]: value for name, value in EXPLANATIONS.items()}
        if not state:
            return cleared
        exports = dict(zip((named["export_json"], named["export_csv"]), state.exports, strict=True))
        side = present.compare(engine.compare(state.query, *state.params, box=state.box))
        side = dict(zip((named["side_image"], named["side_table"]), side, strict=True))
        return {**cleared, **exports, **side, named["link"]: view_link(state)}

    def follow(event) -> None:
        event.success(refresh, named["state"], outputs, api_name=False, show_progress="hidden")

    return follow


def shower(engine: Engine, present: Presenter, named: dict) -> Callable[[SearchState], dict]:
    def show(state: SearchState) -> dict:
        """One engine call for `state` (its query, parameters and box), formatted by output name."""
        answer = engine.search(state.query, *state.params, box=state.box)
        return {named[name]: value for name, value in present.search(answer, state).items()}

    return show


def wire_queries(
    demo: gr.Blocks, engine: Engine, present: Presenter, example_paths: list[str], named: dict, show: Callable
) -> Callable:
    """A new query (upload, example, first load); new parameters are `wire_params`'s."""
    outputs = [named[name] for name in (*SEARCH_OUTPUTS, "state")]
    query, state = named["query"], named["state"]
    params = [named["theta"], named["top_l"], named["n_coarse"]]

    @user_errors
    def search(payload, theta, top_l, n_coarse, source=None, box=None):
        checked, path = engine.check_params(theta, top_l, n_coarse), image_path(payload)
        image = read_image(engine, path, "a query image")
        return show(SearchState(engine.make_query(image), path, checked, box=box, source=source))

    def search_example(index: int, theta, top_l, n_coarse) -> dict:
        """An example shown in the query box and searched (the box is set here, not by its own event)."""
        path = example_paths[index]
        return {query: path, **search(path, theta, top_l, n_coarse, source=("query", index))}

    def open_page(theta, top_l, n_coarse, request: gr.Request):
        """The first load: the view a link asks for (query, parameters, box), else the last example."""
        linked = parse_link(dict(request.query_params) if request else {}, engine)
        for problem in linked.problems:
            gr.Warning(problem[0].upper() + problem[1:] + ".")
        theta, top_l, n_coarse = linked.params or (theta, top_l, n_coarse)
        if linked.source is None:
            return search_example(len(example_paths) - 1, theta, top_l, n_coarse)
        split, index = linked.source
        path = present.files(engine.picture(split, index)[0])
        sliders = dict(zip(params, (theta, top_l, n_coarse), strict=True))
        return {query: path, **sliders, **search(path, theta, top_l, n_coarse, (split, index), linked.box)}

    def restore_query(state):
        """After a refused upload the query box shows the query the panels belong to (empty before any)."""
        return state.path if state else None

    def search_clicked_example(theta, top_l, n_coarse, evt: gr.SelectData) -> dict:
        return search_example(evt.index, theta, top_l, n_coarse)

    # A user's upload (file, drop, paste) searches; an example click or the first load sets the box and
    # searches in one event. Not `query.change`: it fires twice when an upload replaces an image (one bad
    # file, two messages) and also on clearing the box, which is not a request. Refusals show one
    # message and leave every panel as it was: no progress badge (a search takes well under a second)
    # that would turn into a red "Error" on each panel.
    follow = after_search(engine, present, named)
    upload = query.upload(search, [query, *params], outputs, api_name="search", show_progress="hidden")
    upload.failure(restore_query, state, query, api_name=False)
    example = named["examples"].dataset.select(
        search_clicked_example, params, [query, *outputs], api_name=False, show_progress="hidden"
    )
    loaded = demo.load(open_page, params, [query, *params, *outputs], api_name=False)
    moved = wire_params(engine, named, show)
    for event in (upload, example, moved, loaded):
        follow(event)
    return search


def wire_params(engine: Engine, named: dict, show: Callable):
    """New theta, L or K re-run attention and ranking on the query already encoded; returns the event."""
    outputs = [named[name] for name in (*SEARCH_OUTPUTS, "state")]
    state, params = named["state"], [named["theta"], named["top_l"], named["n_coarse"]]

    @user_errors
    def rerank(state, theta, top_l, n_coarse):
        if not state:  # moving a slider before choosing a query just sets it
            return {}
        return show(replace(state, params=engine.check_params(theta, top_l, n_coarse)))

    def restore_params(state):
        """After a refused theta, L or K (out of range, not an integer): the controls go back to the values
        the panels show, so a number box and its slider never disagree with each other or the results."""
        return tuple(gr.skip() for _ in range(3)) if not state else state.params

    moved = gr.on(  # a drag, a typed value: the last one wins
        [p.change for p in params],
        rerank,
        [state, *params],
        outputs,
        api_name=False,
        trigger_mode="always_last",
        show_progress="hidden",
    )
    moved.failure(restore_params, state, params, api_name=False)
    return moved


def wire_clicks(engine: Engine, present: Presenter, named: dict, show: Callable) -> None:
    """Clicks on the panels: a result ("why"), two corners of a box, the clear button, a bit."""
    outputs = [named[name] for name in (*SEARCH_OUTPUTS, "state")]
    state, theta, top_l, n_coarse = (named[k] for k in ("state", "theta", "top_l", "n_coarse"))

    def searched(state) -> SearchState:
        if not state:
            raise ValueError("Run a search first.")
        return state

    @user_errors
    def why(state, theta, top_l, evt: gr.SelectData):
        state = searched(state)
        theta, top_l, _ = engine.check_params(theta, top_l, 1)
        return present.why(state, evt.index, theta, top_l)

    @user_errors
    def point(state, theta, top_l, n_coarse, evt: gr.SelectData):
        """Two clicks on panel 1 mark the object's box (corners); it replaces the CAM's region."""
        scale = engine.image_size / pictures.DISPLAY
        corner = (int(evt.index[0] * scale), int(evt.index[1] * scale))
        params = engine.check_params(theta, top_l, n_coarse)
        return show(replace(searched(state).with_click(corner), params=params))

    @user_errors
    def clear_box(state, theta, top_l, n_coarse):
        if not state:
            return {}
        return show(replace(state.without_box(), params=engine.check_params(theta, top_l, n_coarse)))

    @user_errors
    def show_bit(state, theta, top_l, evt: gr.SelectData):
        state = searched(state)
        theta, top_l, _ = engine.check_params(theta, top_l, 1)
        return present.bit(state, *evt.index, theta, top_l)

    named["reranked"].select(
        why, [state, theta, top_l], [named["why_image"], named["why_text"]], api_name=False
    )
    follow = after_search(engine, present, named)
    for event in (
        named["cam"].select(point, [state, theta, top_l, n_coarse], outputs, api_name=False),
        named["clear"].click(clear_box, [state, theta, top_l, n_coarse], outputs, api_name=False),
    ):
        follow(event)
    named["strip"].select(
        show_bit, [state, theta, top_l], [named["bit_view"], named["bit_text"]], api_name=False
    )


def wire_picks(engine: Engine, present: Presenter, named: dict, search: Callable) -> None:
    """Any query-split or gallery image by its id, and a random one."""
    query, params = named["query"], [named["theta"], named["top_l"], named["n_coarse"]]
    outputs = [query, *(named[name] for name in (*SEARCH_OUTPUTS, "state"))]
    follow = after_search(engine, present, named)
    rng = np.random.default_rng()

    def show_picture(split: str, index, *values) -> dict:
        image, _ = engine.picture(split, index)
        path = present.files(image)  # served like every picture; its labels are known by its pixels
        return {query: path, **search(path, *values, source=(split, int(index)))}

    @user_errors
    def pick(split, index, *values):
        return show_picture(split, index, *values)

    @user_errors
    def pick_random(*values):
        index = int(rng.integers(len(engine.query_images)))
        return {named["split"]: "query", named["picked"]: index, **show_picture("query", index, *values)}

    for event in (
        named["show_id"].click(pick, [named["split"], named["picked"], *params], outputs, api_name=False),
        named["random_example"].click(
            pick_random, params, [named["split"], named["picked"], *outputs], api_name=False
        ),
    ):
        follow(event)
