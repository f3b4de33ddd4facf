"""Pictures for the UI, drawn with OpenCV: overlays, outlines, bit strips, score charts (numpy in, RGB
out)."""

from __future__ import annotations

import cv2
import numpy as np

from hashdemo.evaluation.figures import DISPLAY, captioned, enlarge  # noqa: F401 - the tiles of every picture

GREEN, RED, GOLD, TEAL = (40, 180, 60), (220, 50, 50), (245, 190, 20), (30, 160, 170)


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, size: int = DISPLAY) -> np.ndarray:
    """The image with a [0, 1] map (at the attention's or the image's side) drawn over it in JET colours."""
    if heat.shape != image.shape[:2]:
        heat = cv2.resize(heat.astype(np.float32), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
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


def match_pair(
    query: np.ndarray,
    query_region: np.ndarray,
    result: np.ndarray,
    fired_map: np.ndarray,
    fired: np.ndarray,
    own_region: np.ndarray,
) -> np.ndarray:
    """The query with the region its bits were selected on (gold), beside the result under the heat of
    those bits' maps, where they fire outlined in red and its own attention region in gold."""
    left = image_with_region(query, query_region)
    right = np.ascontiguousarray(heat_overlay(result, fired_map, alpha=0.5))
    for mask, colour in ((own_region, GOLD), (fired, RED)):
        outline = enlarge(mask.astype(np.uint8))
        contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        right = cv2.drawContours(right, contours, -1, colour, 3)
    gap = np.full((len(left), 8, 3), 255, dtype=np.uint8)
    return np.hstack([left, gap, right])


def with_clicks(
    picture: np.ndarray,
    image_size: int,
    corner: tuple[int, int] | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """A displayed picture with what the user clicked on it: the first corner (x, y) as a cross, or the
    finished box (top, left, bottom, right), both in image pixels."""
    picture = np.ascontiguousarray(picture.copy())
    scale = picture.shape[0] / image_size
    if corner is not None:
        x, y = int((corner[0] + 0.5) * scale), int((corner[1] + 0.5) * scale)
        cv2.drawMarker(picture, (x, y), (255, 255, 255), cv2.MARKER_CROSS, 18, 3)
        cv2.drawMarker(picture, (x, y), RED, cv2.MARKER_CROSS, 14, 1)
    if box is not None:
        top, left, bottom, right = (int(v * scale) for v in box)
        cv2.rectangle(
            picture, (left, top), (right + int(scale) - 1, bottom + int(scale) - 1), (255, 255, 255), 3
        )
        cv2.rectangle(picture, (left, top), (right + int(scale) - 1, bottom + int(scale) - 1), RED, 1)
    return picture


def framed(image: np.ndarray, relevant: bool | None, size: int = 128) -> np.ndarray:
    """A result tile; a green (relevant) or red (not) frame when the query's labels are known."""
    tile = np.ascontiguousarray(enlarge(image, size))
    if relevant is not None:
        cv2.rectangle(tile, (0, 0), (size - 1, size - 1), GREEN if relevant else RED, 6)
    return tile


STRIP_LABEL_W, STRIP_TOP, STRIP_GAP, STRIP_CELL, STRIP_PER_ROW = 92, 18, 6, 12, 64  # the code rows' layout


def strip_cell(x: float, y: float, n_global: int, n_local: int) -> tuple[str, int] | None:
    """Which bit a click at pixel (x, y) of `code_strip` hits: ("global" or "local", index), or None."""
    column, row = int((x - STRIP_LABEL_W) // STRIP_CELL), int((y - STRIP_TOP) // (STRIP_CELL + STRIP_GAP))
    inside = (y - STRIP_TOP) % (STRIP_CELL + STRIP_GAP) < STRIP_CELL
    if not inside or column < 0 or column >= STRIP_PER_ROW or row < 0:
        return None
    if row == 0:
        return ("global", column) if column < n_global else None
    index = (row - 1) * STRIP_PER_ROW + column
    return ("local", index) if index < n_local else None


def code_strip(
    global_bits: np.ndarray,
    local_bits: np.ndarray,
    selected: np.ndarray,
    scores: np.ndarray | None = None,
) -> np.ndarray:
    """The codes as rows of cells (1 = dark, 0 = light), wrapped at `per_row` bits, each row named with
    its first bit index: H_g, then H_l with the L selected bits framed, gold where the feature map
    overlaps the attention region (s_c > 0), teal where the tie rule filled the selection."""
    label_w, gap, per_row, cell = STRIP_LABEL_W, STRIP_GAP, STRIP_PER_ROW, STRIP_CELL
    rows = [("H_g", global_bits, 0)] + [
        (
            f"H_l {start}-{min(start + per_row, len(local_bits)) - 1}",
            local_bits[start : start + per_row],
            start,
        )
        for start in range(0, len(local_bits), per_row)
    ]
    height = STRIP_TOP + len(rows) * (cell + gap) + 26
    canvas = np.full((height, label_w + per_row * cell + 8, 3), 255, np.uint8)
    ink = (60, 60, 60)
    for k in range(0, per_row, 8):
        cv2.putText(
            canvas, str(k), (label_w + k * cell, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, ink, 1, cv2.LINE_AA
        )
    chosen = {int(c) for c in selected}
    for r, (name, bits, offset) in enumerate(rows):
        top = STRIP_TOP + r * (cell + gap)
        cv2.putText(canvas, name, (4, top + cell - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.38, ink, 1, cv2.LINE_AA)
        for i, bit in enumerate(bits):
            x = label_w + i * cell
            canvas[top : top + cell, x : x + cell] = (40, 40, 60) if bit else (225, 228, 235)
            cv2.rectangle(canvas, (x, top), (x + cell - 1, top + cell - 1), (255, 255, 255), 1)
            if r > 0 and offset + i in chosen:
                positive = scores is None or scores[offset + i] > 0
                cv2.rectangle(canvas, (x, top), (x + cell - 1, top + cell - 1), GOLD if positive else TEAL, 2)
    legend_y = height - 8
    _legend_key(canvas, 4, legend_y, GOLD, "selected, overlaps the region", ink)
    _legend_key(canvas, 230, legend_y, TEAL, "selected by the tie rule (no overlap)", ink)
    return canvas


def _legend_key(canvas: np.ndarray, x: int, y: int, colour: tuple, text: str, ink: tuple) -> None:
    """One key of the code strip's legend: a framed cell in `colour` at (x, y), then its meaning."""
    cv2.rectangle(canvas, (x, y - 9), (x + 10, y + 1), colour, 2)
    cv2.putText(canvas, text, (x + 16, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, ink, 1, cv2.LINE_AA)


def scores_chart(scores: np.ndarray, selected: np.ndarray, height: int = 150, bar: int = 10) -> np.ndarray:
    """All overlap scores s_c from high to low as a bar chart picture; the selected L in gold.

    Drawn with OpenCV: a matplotlib figure per request was slow and grew the server's memory
    (docs/results.md, "Speed of the app").
    """
    order = np.argsort(-scores, kind="stable")
    chosen = set(selected.tolist())
    bar = max(1, min(bar, 640 // max(len(order), 1)))  # 256-512 maps in one picture cheap to encode
    top = max(int(scores.max()), 1)
    margin, width = 24, bar * len(order)
    canvas = np.full((height + 2 * margin, width + 2 * margin, 3), 255, np.uint8)
    for i, channel in enumerate(order):
        h = int(round((height - 1) * scores[channel] / top))
        x = margin + i * bar
        colour = (GOLD if scores[channel] > 0 else TEAL) if channel in chosen else (128, 144, 168)
        cv2.rectangle(canvas, (x + 1, margin + height - h), (x + bar - 2, margin + height), colour, -1)
    cv2.line(canvas, (margin, margin + height), (margin + width, margin + height), (60, 60, 60), 1)
    cv2.putText(
        canvas, f"max s_c = {top}", (margin, margin - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1
    )
    cv2.putText(
        canvas,
        "Conv7 maps by overlap score (gold: selected; teal: selected by the tie rule, no overlap)",
        (margin, margin + height + 16),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        (60, 60, 60),
        1,
    )
    return canvas


def comparison_grid(rows: list[tuple[str, list[np.ndarray], list, list]], tile: int = 80) -> np.ndarray:
    """One row of framed tiles per method, its name on the left: (name, images, shares a label,
    holds the attended item) per row; a gold bar under a tile marks the attended item. Rows may be
    shorter than others (a two-level row holds only K results): they end early."""
    label_w, bar, gap = 150, 6, 4
    width = label_w + max((len(images) for _, images, _, _ in rows), default=0) * (tile + gap)
    lines = []
    for name, images, relevant, attended in rows:
        canvas = np.full((tile + bar + gap, width, 3), 255, np.uint8)
        cv2.putText(
            canvas, name, (4, tile // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA
        )
        for i, (image, shares, holds) in enumerate(zip(images, relevant, attended, strict=True)):
            left = label_w + i * (tile + gap)
            canvas[:tile, left : left + tile] = framed(image, shares, tile)
            if holds:
                canvas[tile + 1 : tile + 1 + bar, left : left + tile] = GOLD
        lines.append(canvas)
    return np.concatenate(lines)
