"""The "Compose" tab: images in slots A, B (and C for a chain), an operator, and DCOH's answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import gradio as gr

from hashdemo.app.links import composition_link, parse_composition, sentence
from hashdemo.app.presenter import COMPOSE_OUTPUTS, Presenter
from hashdemo.app.widgets import REVEAL, image_input, image_path, link_controls, read_image, user_errors
from hashdemo.data.images import ImageError
from hashdemo.data.label_ops import OPERATORS

NO_CHAIN = "(no chain)"
RANKED = 100  # results each composition ranks: its AP@100; the rows show the first 20
SHOW_ANSWER = REVEAL.format(
    top="#compose-summary", bottom="#compose-summary", shown="#composed-row img", block="start"
)  # a phone scrolls to the answer


def takes(engine, path: str) -> bool:
    """Whether the models can take the file at `path` (its upload event says why not, once)."""
    try:
        engine.read_image(path)
    except ImageError:
        return False
    return True


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


def compose_tab(demo: gr.Blocks, present: Presenter, example_paths: list[str], roots: list[Path]) -> None:
    """The layout, then the events: the composition itself, then how slots are filled."""
    named = compose_layout(present, example_paths)
    wire_compose(present, named)
    wire_slots(present, example_paths, roots, named)
    wire_presets(present, named)
    wire_link(demo, present, named)


def compose_layout(present: Presenter, example_paths: list[str]) -> dict:
    """The slots, operators, presets and example tiles on the left; the answer on the right, so that it
    is on the first screen at 1400x900 after every action (a phone stacks them and scrolls to it)."""
    gr.Markdown(
        "Put an image in each slot (drag a tile or an image file onto it, or click a tile below), pick an "
        "operator, and DCOH composes their hash codes; the gallery is searched with the composed code. "
        "Any change of a slot or the operator recomputes."
    )
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            named = slot_controls()
            named.update(example_tiles(present, example_paths))
            named.update(operator_controls())
        with gr.Column(scale=3, min_width=300):
            named.update(compose_results())
    return named


def slot_controls() -> dict:
    """Slots A, B and C in a row."""
    with gr.Row():
        return {
            "slot_a": image_input("Slot A", height=140, elem_id="slot-a", min_width=110),
            "slot_b": image_input("Slot B", height=140, elem_id="slot-b", min_width=110),
            "slot_c": image_input("Slot C (optional: a chain)", height=140, elem_id="slot-c", min_width=110),
        }


def operator_controls() -> dict:
    """The operators, the tile-click target, the baseline toggle and the button."""
    named = {}
    named["operator"] = gr.Radio(list(OPERATORS), value="union", label="Operator")
    named["then"] = gr.Radio(
        [NO_CHAIN, *OPERATORS], value=NO_CHAIN, label="Then, with slot C: (A op B) op' C"
    )
    named["active"] = gr.Radio(["Slot A", "Slot B", "Slot C"], value="Slot A", label="A tile click fills")
    named["show_bitwise"] = gr.Checkbox(
        label="Show the baselines: the bitwise row (OR / AND / AND-NOT of the codes) and the exact "
        "matches of bitwise and the label route"
    )
    named["compose_button"] = gr.Button("Compose", variant="primary")
    return named


def example_tiles(present: Presenter, example_paths: list[str]) -> dict:
    """The preset buttons, the hidden box a dropped tile writes to, and the example tiles."""
    presets = present.engine.presets()
    gr.Markdown("**Presets** (query-split images whose target set the gallery holds):")
    with gr.Row():
        preset_buttons = {name: gr.Button(f"Preset: {name}", size="sm") for name in presets}
    drop_box = gr.Textbox(elem_id="drop-box", show_label=False, container=False)
    tiles = gr.Gallery(
        value=[
            (path, present.engine.label_text(labels))
            for path, (_, labels) in zip(example_paths, present.engine.examples.values(), strict=True)
        ],
        label="Example images (click or drag to fill a slot)",
        elem_id="compose-examples",
        columns=6,
        height="auto",  # every caption whole, on a phone too
        allow_preview=False,
    )
    return {"presets": presets, "preset_buttons": preset_buttons, "drop_box": drop_box, "tiles": tiles}


def compose_results() -> dict:
    """The answer: a summary, the baselines' line, the composed and the bitwise rows, downloads and link."""
    named = {
        "summary": gr.Markdown("Fill slots A and B to compose.", elem_id="compose-summary"),
        "baselines": gr.Markdown(visible=False, elem_id="compose-baselines"),
    }
    # one above the other: side by side in the results column each tile is too narrow for its caption
    named["composed"] = gr.Gallery(
        label="Top 20 for the composed code", columns=5, height="auto", elem_id="composed-row"
    )
    named["bitwise"] = gr.Gallery(
        label="Bitwise baseline, top 20", columns=5, height="auto", visible=False, elem_id="bitwise-row"
    )
    gr.Markdown(
        "Frames: **green** = exactly the target label set T (the relevance behind the evaluation), **red** = "
        "any other set; no frame when an input is not a dataset image."
    )
    with gr.Row():
        named["export_json"] = gr.DownloadButton("Download this composition (JSON)", size="sm")
        named["export_csv"] = gr.DownloadButton("Download (CSV)", size="sm")
    named.update(link_controls("compose", "Link to this composition"))
    named["extras"] = gr.State({"baselines": ""})  # the last composition's line shown with the toggle
    return named


def composer(present: Presenter, named: dict) -> Callable:
    """The composition itself (the API's /compose): slots A and B, an operator, and optionally slot C
    with a second operator; returns the answer by output, and the extras the baselines toggle shows."""

    @user_errors
    def compose(image_a_path, image_b_path, operator, image_c_path=None, then=None):
        image_a_path, image_b_path, image_c_path = map(image_path, (image_a_path, image_b_path, image_c_path))
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
        answer = present.engine.compose(
            image_a, image_b, operator, k=RANKED, image_c=image_c, then=then if chain else None
        )
        link = composition_link(answer.sources, answer.operators)
        shown = {named[name]: value for name, value in present.compose(answer, link).items()}
        return {**shown, named["extras"]: {"baselines": present.baselines(answer)}}

    return compose


def wire_compose(present: Presenter, named: dict) -> None:
    """Compose on the button (the API's /compose) and on every change of a slot or an operator."""
    slot_a, slot_b, slot_c, operator, then = (
        named[k] for k in ("slot_a", "slot_b", "slot_c", "operator", "then")
    )
    baselines, extras, show_bitwise = (named[k] for k in ("baselines", "extras", "show_bitwise"))
    inputs = [slot_a, slot_b, operator, slot_c, then]
    outputs = [*(named[name] for name in COMPOSE_OUTPUTS), extras]
    compose = composer(present, named)

    @user_errors
    def compose_when_filled(image_a_path, image_b_path, operator, image_c_path, then):
        """Every change recomputes; with a slot empty the old results go, so nothing on screen is stale.
        A slot holding a file that is not an image changes nothing: its upload says why and puts the
        slot's previous image back."""
        paths = tuple(map(image_path, (image_a_path, image_b_path, image_c_path)))
        if any(path and not takes(present.engine, path) for path in paths):
            return {extras: gr.skip()}  # one output named: Gradio reads an empty dict as one value
        image_a_path, image_b_path, image_c_path = paths
        if not image_a_path or not image_b_path or (then != NO_CHAIN and not image_c_path):
            missing = "slots A and B" if then == NO_CHAIN else "slots A, B and C"
            empty = {"summary": f"Fill {missing} to compose.", "composed": [], "bitwise": [], "address": ""}
            empty.update(export_json=None, export_csv=None, link_note="")
            return {named[name]: value for name, value in empty.items()} | {extras: {"baselines": ""}}
        return compose(image_a_path, image_b_path, operator, image_c_path, then)

    def show_baselines(show: bool, shown: dict):
        text = shown["baselines"]
        return gr.Gallery(visible=show), gr.Markdown(text, visible=show and bool(text))

    toggled = [show_bitwise, extras], [named["bitwise"], baselines]
    composing = named["compose_button"].click(compose, inputs, outputs, api_name="compose")
    composing.success(show_baselines, *toggled, api_name=False, show_progress="hidden")
    composing.success(None, js=SHOW_ANSWER)
    # the page's own events read the files themselves (preprocess=False: hashdemo.app.widgets.image_input)
    changed = gr.on(
        [slot_a.change, slot_b.change, slot_c.change, operator.change, then.change],
        compose_when_filled,
        inputs,
        outputs,
        api_name=False,
        preprocess=False,
    )
    changed.success(show_baselines, *toggled, api_name=False, show_progress="hidden")
    changed.success(None, js=SHOW_ANSWER)
    show_bitwise.change(show_baselines, *toggled, api_name=False)


def wire_presets(present: Presenter, named: dict) -> None:
    """A preset fills the slots and the operators; the slots' change events then compose."""
    slots = [named["slot_a"], named["slot_b"], named["slot_c"]]

    def preset(name: str) -> Callable:
        operators, ids = named["presets"][name]

        def fill():
            paths = [present.files(present.engine.query_images[i]) for i in ids]
            return (
                *paths,
                *([None] * (3 - len(paths))),
                operators[0],
                operators[1] if len(operators) > 1 else NO_CHAIN,
            )

        return fill

    for name, button in named["preset_buttons"].items():
        button.click(preset(name), None, [*slots, named["operator"], named["then"]], api_name=False)


def wire_link(demo: gr.Blocks, present: Presenter, named: dict) -> None:
    """A link's composition fills the slots and the operators on the first load; the slots' change events
    then compose. A bad part of it is dropped with a sentence (hashdemo.app.links)."""
    slots = [named["slot_a"], named["slot_b"], named["slot_c"]]

    def open_page(request: gr.Request):
        linked = parse_composition(dict(request.query_params) if request else {}, present.engine)
        if linked is None or linked.problems:
            for problem in () if linked is None else linked.problems:
                gr.Warning(sentence(problem))
            return tuple(gr.skip() for _ in range(5))
        paths = [present.files(present.engine.picture(split, index)[0]) for split, index in linked.sources]
        ops = linked.operators
        return *paths, *([None] * (3 - len(paths))), ops[0], ops[1] if len(ops) > 1 else NO_CHAIN

    demo.load(open_page, None, [*slots, named["operator"], named["then"]], api_name=False)


def wire_slots(present: Presenter, example_paths: list[str], roots: list[Path], named: dict) -> None:
    """A slot fills from a tile click, a dropped tile or file, or an upload (checked as it arrives)."""
    slot_a, slot_b, slot_c, active = (named[k] for k in ("slot_a", "slot_b", "slot_c", "active"))

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
        def check(payload):
            """A slot's upload is checked as it arrives, one message (its `change` may fire twice)."""
            read_image(present.engine, image_path(payload), f"the image in slot {slot}")

        return check

    def remember(payload, kept):
        """The slot's last image the models can take: what a refused file gives way to."""
        path = image_path(payload)
        if not path:
            return None
        return path if takes(present.engine, path) else gr.skip()

    for slot, component in zip("ABC", (slot_a, slot_b, slot_c), strict=True):
        kept = gr.State(None)
        component.change(
            remember, [component, kept], kept, api_name=False, show_progress="hidden", preprocess=False
        )
        # a refused file gives the slot back its previous image (or leaves it empty), never a broken one
        component.upload(
            check_upload(slot), component, None, api_name=False, show_progress="hidden", preprocess=False
        ).failure(lambda previous: previous, kept, component, api_name=False)
    named["tiles"].select(
        fill_slot,
        [active, slot_a, slot_b],
        [slot_a, slot_b, slot_c, active],
        api_name=False,
        preprocess=False,
    )
    named["drop_box"].change(drop, named["drop_box"], [slot_a, slot_b, slot_c], api_name=False)
