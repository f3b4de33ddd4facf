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


def image_input(label: str, height: int, elem_id: str | None = None) -> gr.Image:
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
