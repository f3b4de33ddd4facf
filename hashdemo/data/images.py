"""Turning any user image into the model's input: a 64x64 RGB uint8 array.

Every failure is an `ImageError` whose message is a sentence a person can act on.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MODEL_SIZE = 64  # the outfits' side; the service passes its checkpoint's own size
MAX_PIXELS = 40_000_000  # refused from the header, before decoding: decompression bombs stop here
MAX_FILE_BYTES = 20 * 1024 * 1024
NOT_AN_IMAGE = "This file is not an image that can be read (PNG, JPEG, GIF, BMP, WebP...)."


class ImageError(ValueError):
    """The input cannot be used as an image; the message says why."""


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Open a file or bytes lazily and check its size before any pixel is decoded."""
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"The file {path.name} could not be found.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageError(f"The file is over {MAX_FILE_BYTES // 2**20} MB; please choose a smaller image.")
        data = path.read_bytes()
    if not data:
        raise ImageError("The file is empty (0 bytes); please choose an image file.")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as error:  # PIL's own, far larger limit
        raise ImageError(f"The image has over {MAX_PIXELS // 10**6} megapixels and is refused.") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(NOT_AN_IMAGE) from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is {width}x{height} pixels; images over {MAX_PIXELS // 10**6} megapixels are refused."
        )
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB: 16-bit and float scaled to 8 bits, transparency composited onto black
    (the outfits' own background)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "I":  # 32-bit ints: PIL's mode for some 16-bit files
            top = 65535.0 if values.max() > 255 else 255.0
        else:  # float images have no fixed range
            top = max(float(values.max()), 1.0)
        image = Image.fromarray((np.clip(values, 0, top) * 255.0 / top).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def to_model_image(image: Image.Image, size: int = MODEL_SIZE) -> np.ndarray:
    """First frame, EXIF orientation applied, RGB, padded to a square with black, resized to size x size."""
    try:
        image.seek(0)  # animated GIF / WebP: the first frame
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for damaged or truncated data
        raise ImageError("The image file is damaged or truncated and could not be decoded.") from error
    side = max(image.size)
    square = Image.new("RGB", (side, side))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load_image(source: str | os.PathLike | bytes, size: int = MODEL_SIZE) -> np.ndarray:
    """A path or bytes -> (size, size, 3) uint8, or an ImageError with a clear sentence."""
    image = open_image(source)
    if image.format == "JPEG":  # decode a large photo at a fraction of its size, never below `size`
        image.draft("RGB", (size, size))
    return to_model_image(image, size)
