"""Pictures for the UI, drawn with OpenCV: overlays, outlines, bit strips, score charts (numpy in, RGB out)."""

from __future__ import annotations

import cv2
import numpy as np

DISPLAY = 256  # the 64x64 model images are shown at 4x
GREEN, RED, GOLD = (40, 180, 60), (220, 50, 50), (245, 190, 20)


def enlarge(image: np.ndarray, size: int = DISPLAY) -> np.ndarray:
    """Nearest-neighbour upscaling keeps the 64x64 pixels honest."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, size: int = DISPLAY) -> np.ndarray:
    """The image with a [0, 1] map drawn over it in the JET colour map."""
    colour = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colour.astype(np.float32)
    return enlarge(blended.astype(np.uint8), size)


def region_outline(mask: np.ndarray, region: np.ndarray, colour: tuple[int, int, int] = RED) -> np.ndarray:
    """A binary map in grey with the outline of `region` drawn on it."""
    canvas = np.repeat(enlarge(mask.astype(np.uint8) * 170)[..., None], 3, axis=2)
    contours, _ = cv2.findContours(enlarge(region.astype(np.uint8)), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(np.ascontiguousarray(canvas), contours, -1, colour, 3)


def image_with_region(
    image: np.ndarray, region: np.ndarray, colour: tuple[int, int, int] = GOLD
) -> np.ndarray:
    """The image with the outline of an attention region."""
    contours, _ = cv2.findContours(enlarge(region.astype(np.uint8)), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(np.ascontiguousarray(enlarge(image)), contours, -1, colour, 3)


def framed(image: np.ndarray, relevant: bool | None, size: int = 128) -> np.ndarray:
    """A result tile; a green (relevant) or red (not) frame when the query's labels are known."""
    tile = np.ascontiguousarray(enlarge(image, size))
    if relevant is not None:
        cv2.rectangle(tile, (0, 0), (size - 1, size - 1), GREEN if relevant else RED, 6)
    return tile


def code_strip(
    global_bits: np.ndarray, local_bits: np.ndarray, selected: np.ndarray, cell: int = 14
) -> np.ndarray:
    """Two rows of cells: H_g, then H_l with the L selected bits framed in gold (1 = dark, 0 = light)."""
    width = cell * len(local_bits)
    canvas = np.full((cell * 5, width, 3), 255, np.uint8)

    def row(bits: np.ndarray, top: int, highlight: set[int]) -> None:
        for i, bit in enumerate(bits):
            x = i * cell
            canvas[top : top + cell, x : x + cell] = (40, 40, 60) if bit else (225, 228, 235)
            cv2.rectangle(canvas, (x, top), (x + cell - 1, top + cell - 1), (255, 255, 255), 1)
            if i in highlight:
                cv2.rectangle(canvas, (x, top), (x + cell - 1, top + cell - 1), GOLD, 3)

    row(global_bits, cell, set())
    row(local_bits, 3 * cell, {int(i) for i in selected})
    return canvas


def scores_chart(scores: np.ndarray, selected: np.ndarray, height: int = 150, bar: int = 10) -> np.ndarray:
    """All overlap scores s_c from high to low as a bar chart picture; the selected L in gold.

    Drawn with OpenCV: a matplotlib figure per request cost ~100 ms and grew the server's memory.
    """
    order = np.argsort(-scores, kind="stable")
    chosen = set(selected.tolist())
    top = max(int(scores.max()), 1)
    margin, width = 24, bar * len(order)
    canvas = np.full((height + 2 * margin, width + 2 * margin, 3), 255, np.uint8)
    for i, channel in enumerate(order):
        h = int(round((height - 1) * scores[channel] / top))
        x = margin + i * bar
        colour = GOLD if channel in chosen else (128, 144, 168)
        cv2.rectangle(canvas, (x + 1, margin + height - h), (x + bar - 2, margin + height), colour, -1)
    cv2.line(canvas, (margin, margin + height), (margin + width, margin + height), (60, 60, 60), 1)
    cv2.putText(
        canvas, f"max s_c = {top}", (margin, margin - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1
    )
    cv2.putText(
        canvas,
        "Conv7 maps by overlap score (gold: selected)",
        (margin, margin + height + 16),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        (60, 60, 60),
        1,
    )
    return canvas


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
