"""Figures drawn from data: image tiles with captions and the dataset montage (OpenCV, numpy in, RGB out)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torchvision.utils import make_grid

from hashdemo.data.outfits import Split, label_text

DISPLAY = 256  # the 64x64 model images are shown at 4x


def enlarge(image: np.ndarray, size: int = DISPLAY) -> np.ndarray:
    """Nearest-neighbour upscaling keeps the 64x64 pixels honest."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


def captioned(
    image: np.ndarray,
    lines: list[str],
    size: int = 128,
    frame: tuple[int, int, int] | None = None,
    n_lines: int | None = None,
) -> np.ndarray:
    """A tile: the picture enlarged, then a white band below it with one caption line per entry
    (room for `n_lines`, so tiles of a grid line up). Captions never cover the picture."""
    tile = np.ascontiguousarray(enlarge(image, size))
    if frame is not None:
        cv2.rectangle(tile, (0, 0), (size - 1, size - 1), frame, 6)
    band = np.full((14 * max(n_lines or 0, len(lines)) + 4, size, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(
            band, line, (3, 13 + 14 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (40, 40, 40), 1, cv2.LINE_AA
        )
    return np.concatenate([tile, band])


def save_montage(split: Split, path: str | os.PathLike, rows: int = 4, cols: int = 8) -> None:
    """Write a PNG grid of the first rows*cols images of `split`, each captioned with its labels."""
    tiles = [
        captioned(split.images[i], label_text(split.labels[i]).split(", "), n_lines=3)
        for i in range(min(rows * cols, len(split)))
    ]
    batch = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)  # (N, 3, h, w) uint8
    grid = make_grid(batch, nrow=cols, padding=6, pad_value=255).permute(1, 2, 0).numpy()
    cv2.imwrite(str(path), np.ascontiguousarray(grid[..., ::-1]))
