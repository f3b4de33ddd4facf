"""The pictures handlers return, as content-addressed PNG files under the app's cache."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from hashdemo.storage.files import write_atomic


class PictureFiles:
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

    def named(self, data: bytes, name: str) -> str:
        """`data` as a file called `name` (what a download saves it as), in a folder named by its content."""
        folder = self.directory / hashlib.sha256(data).hexdigest()[:32]
        folder.mkdir(exist_ok=True)
        path = folder / name
        try:
            os.utime(path)
        except FileNotFoundError:
            write_atomic(path, data, durable=False)
        return str(path)

    def store(self, data: bytes, suffix: str = ".png") -> str:
        path = self.directory / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        try:
            os.utime(path)  # named again: the disk budget keeps it while this response is delivered
        except FileNotFoundError:
            write_atomic(path, data, durable=False)  # a picture lost in a crash is drawn again
        return str(path)
