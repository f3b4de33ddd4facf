"""The pieces every tab builds with: the one place user mistakes become messages, the image input that
lets the handler refuse a bad file with a sentence, titled picture panels, and the example files."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, UnidentifiedImageError

from hashdemo.data.images import ImageError
from hashdemo.retrieval.index import GalleryUnavailable
from hashdemo.service.engine import Engine
from hashdemo.storage.locations import default_cache_dir

log = logging.getLogger(__name__)


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


@user_errors
def refuse_drop(payload: str) -> None:
    """A dropped file that is not an image ("where|name|stamp" from the page script, which stopped it
    before Gradio's upload area emptied the box): one sentence; the box keeps its picture."""
    where, _, rest = (payload or "").partition("|")
    name = rest.rpartition("|")[0]
    if where and name:
        raise ValueError(f"{name} is not an image: drop an image file on {where} (it keeps its picture).")


def image_input(label: str, height: int, elem_id: str | None = None, min_width: int = 160) -> gr.Image:
    """An image input that hands the handler the file (hashdemo.data.images converts every mode), even one
    Gradio cannot open: the handler's reader refuses it with a sentence naming the input.

    Gradio opens an upload with PIL before any handler runs; a file that is not an image would
    otherwise fail there, in every event that reads the input (Gradio fires `change` twice when an
    upload replaces an image: two identical messages). The check is wrapped on the instance (a subclass
    of a Gradio component makes Gradio write a .pyi stub next to this module at import time). Gradio
    keeps a fresh copy of a component in the session once an event has set its value, without the
    wrapper, so the events that only the page fires take the raw file (`preprocess=False`, then
    `image_path`); the API's events keep Gradio's checks of the other inputs (slider bounds, choices).
    """
    component = gr.Image(
        label=label,
        type="filepath",
        image_mode=None,
        sources=["upload", "clipboard"],
        height=height,
        elem_id=elem_id,
        min_width=min_width,
    )
    check = component.preprocess

    def preprocess(payload):
        try:
            return check(payload)
        except (Image.DecompressionBombError, UnidentifiedImageError, OSError):
            return payload.path  # hashdemo.data.images refuses it with a sentence (size, not an image)

    component.preprocess = preprocess
    return component


def image_path(payload) -> str | None:
    """The file behind an image input's raw value (a FileData dict, a path, or nothing)."""
    if isinstance(payload, dict):
        return payload.get("path") or None
    return payload or None


def read_image(engine: Engine, path: str | None, what: str) -> np.ndarray:
    """The image at `path` as the models' input, or a ValueError/ImageError sentence naming `what`."""
    if not path:
        raise ValueError(f"Please provide {what}: upload or drop an image file, or click an example.")
    try:
        return engine.read_image(path)
    except ImageError as error:
        raise ImageError(f"{what[0].upper()}{what[1:]}: {error}") from None  # "slot A", not "slot a"


# A phone (or any screen where it is out of view) scrolls to the answer after an action, from its `top`
# element's top to its `bottom` one's bottom; where both are already in view nothing moves (format() the
# selectors, `shown`: what exists only when there is an answer to see, and `block`: "start" puts the answer
# at the top, "nearest" scrolls as little as it takes).
REVEAL = """() => {{
  const top = document.querySelector("{top}"), bottom = document.querySelector("{bottom}");
  if (!top || !bottom || !document.querySelector("{shown}")) return;
  const inView = top.getBoundingClientRect().top >= 0
    && bottom.getBoundingClientRect().bottom <= window.innerHeight;
  if (!inView) top.scrollIntoView({{block: "{block}"}});
}}"""


def link_controls(kind: str, label: str) -> dict:
    """The view's link: the handlers write its query string to a hidden `address` box, whose change puts it
    in the page's address (address.js) and shows the full URL in `link`, with a copy button; `link_note`
    says when an image cannot travel in a link."""
    address = gr.Textbox(elem_classes="hidden-channel", show_label=False, container=False)
    link = gr.Textbox(
        label=f"{label} (the page's address follows it)", interactive=False, buttons=["copy"], max_lines=1
    )
    note = gr.Markdown()
    # (the page script defines hashdemoAddress on load; were an answer faster, the box shows the query)
    address.change(None, address, link, js=f"(q) => window.hashdemoAddress?.('{kind}', q) ?? q")
    return {"address": address, "link": link, "link_note": note}


def panel(title: str, elem_id: str, height: int | None = 256, wide: bool = False) -> gr.Image:
    """A picture with its title above it: Gradio's floating label would cover the picture's top rows
    (the H_g row of the codes, the corners a user clicks). A `wide` picture keeps its own size on a
    phone and scrolls sideways (style.css), and has no fullscreen icon over its row ends."""
    gr.Markdown(f"**{title}**", elem_classes="panel-title")
    return gr.Image(
        label=title,
        show_label=False,
        height=height,
        elem_id=f"{elem_id}-panel",
        buttons=[] if wide else ["fullscreen"],
        elem_classes="scroll-wide" if wide else None,
    )


def examples_dir(dataset: str = "outfits") -> Path:
    """Where the app writes a dataset's example images (one folder per dataset: ids repeat across sets)."""
    return default_cache_dir() / "examples" / dataset


def example_files(dataset: str = "outfits") -> list[str]:
    """The example images a running app has written, for the load and soak clients."""
    return sorted(str(path) for path in examples_dir(dataset).glob("*.png"))


def write_examples(engine: Engine, folder: Path) -> list[str]:
    """The example images as PNG files Gradio can serve; written once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (image, _) in engine.examples.items():
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths
