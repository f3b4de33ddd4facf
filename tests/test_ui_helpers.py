"""Pure helpers of the UI: the drop channel reads only the app's own files; a click on the code rows
names its bit."""

import numpy as np
import pytest

from hashdemo.app.compose_tab import dropped_file


def test_a_served_file_under_a_root_is_accepted(tmp_path):
    picture = tmp_path / "pics" / "tile one.png"
    picture.parent.mkdir()
    picture.write_bytes(b"png")
    url = f"http://127.0.0.1:7860/gradio_api/file={str(picture).replace(' ', '%20')}"
    assert dropped_file(f"B|{url}|1732770000", [tmp_path / "pics"]) == ("B", str(picture.resolve()))


@pytest.mark.parametrize(
    "payload",
    [
        "C|http://127.0.0.1/gradio_api/file=/etc/hostname|1",  # no such slot
        "A|http://example.org/picture.png|1",  # not a file the app serves
        "A|http://127.0.0.1/gradio_api/file=/etc/hostname|1",  # outside the roots
        "A|http://127.0.0.1/gradio_api/file={root}/../../etc/hostname|1",  # escapes a root
        "A|http://127.0.0.1/gradio_api/file={root}/missing.png|1",  # not there
        "",
    ],
)
def test_anything_else_is_refused_with_a_sentence(tmp_path, payload):
    with pytest.raises(ValueError, match="can be dropped on a slot"):
        dropped_file(payload.format(root=tmp_path), [tmp_path])


def test_a_click_on_the_code_rows_names_the_bit():
    from hashdemo.app.pictures import STRIP_CELL, STRIP_GAP, STRIP_LABEL_W, STRIP_TOP, code_strip, strip_cell

    def centre(row: int, column: int) -> tuple[float, float]:
        return STRIP_LABEL_W + column * STRIP_CELL + 5, STRIP_TOP + row * (STRIP_CELL + STRIP_GAP) + 5

    assert strip_cell(*centre(0, 7), 32, 256) == ("global", 7)
    assert strip_cell(*centre(0, 40), 32, 256) is None  # past H_g's 32 bits
    assert strip_cell(*centre(1, 3), 32, 256) == ("local", 3)
    assert strip_cell(*centre(4, 63), 32, 256) == ("local", 255)
    assert strip_cell(*centre(5, 0), 32, 256) is None  # below the last row
    assert strip_cell(10, 20, 32, 256) is None  # on a row name
    picture = code_strip(np.zeros(32, np.uint8), np.ones(256, np.uint8), np.arange(8))
    # the cell the function names is drawn there: dark for a 1 bit, light for a 0 bit
    x, y = centre(4, 63)
    assert picture[int(y), int(x)].tolist() == [40, 40, 60]
    x, y = centre(0, 7)
    assert picture[int(y), int(x)].tolist() == [225, 228, 235]


def test_two_corners_make_the_box_that_replaces_the_region():
    from hashdemo.app.state import corner_box
    from hashdemo.service.engine import box_mask

    box = corner_box((40, 10), (20, 30))  # clicks (x, y) in any order
    assert box == (10, 20, 30, 40)
    mask = box_mask(box, 64)
    assert mask.sum() == 21 * 21 and mask[10, 20] and mask[30, 40] and not mask[31, 40] and not mask[10, 19]


def test_the_side_by_side_picture_takes_rows_of_unequal_length():
    """Issue 30, item 1: at K = 5 the two-level rows hold 5 results and the one-level rows 10; the picture
    failed on them (a ValueError in the server log) and everything after it stayed stale."""
    from hashdemo.app.pictures import comparison_grid

    tile = np.zeros((64, 64, 3), np.uint8)
    rows = [
        ("global", [tile] * 10, [True] * 10, [None] * 10),
        ("hier_cam", [tile] * 5, [False] * 5, [True] * 5),
    ]
    picture = comparison_grid(rows, tile=20)
    assert picture.shape[0] == 2 * (20 + 6 + 4) and picture.shape[1] == 150 + 10 * (20 + 4)


def test_a_dropped_file_that_is_not_an_image_is_named_in_one_sentence():
    import gradio as gr

    from hashdemo.app.widgets import refuse_drop

    with pytest.raises(gr.Error, match=r"notes\.txt is not an image: drop an image file on slot A"):
        refuse_drop("slot A|notes.txt|1733390000")
    assert refuse_drop("") is None  # nothing named, nothing said


def test_the_curve_against_l_and_theta_spans_its_values_and_shows_the_global_code():
    """Issue 37, defect 12: every line in 0.9-1.0 is drawn on an axis that spans them, not 0-1, beside the
    global code's own row (dashed, one per figure)."""
    from hashdemo.app.pin_compare import curve_figure

    points = {
        "L": [(1, 0.9, 0.92, 0.93), (32, 1.0, 0.97, 0.95)],
        "theta": [(0.1, 0.95, 0.94, 0.94), (0.9, 0.9, 0.93, 0.92)],
    }
    figure = curve_figure(points, [0.4, 32, 1000], (1.0, 0.96, 0.91))
    for ax in figure.axes:
        low, high = ax.get_ylim()
        assert 0.8 <= low < 0.9 and 1.0 <= high <= 1.02
        labels = [line.get_label() for line in ax.get_lines()]
        assert {"P@10, global code only", "AP@100, global code only", "AP@K, global code only"} <= set(labels)


def test_the_ties_line_counts_every_candidate_and_the_tie_at_the_last_tile():
    """Issue 37: the re-rank's d_L histogram over the K candidates and the tie at the shown results."""
    from hashdemo.app.presenter import ties_text
    from hashdemo.service.answers import Ranking

    distances = np.array([0] * 12 + [1] * 5 + [3] * 3)
    text = ties_text(Ranking(np.arange(20), distances, None))
    assert "K = 20 candidates (value: count): 0: 12 · 1: 5 · 3: 3." in text
    assert "reach d_L = 0, which 12 candidates share" in text
    assert "reach d_L = 1, which 5" in ties_text(Ranking(np.arange(20), distances, None), shown=15)


def test_every_code_pointer_in_how_it_works_names_a_real_definition():
    """`hashdemo/x.py: name` and `hashdemo/x.py: Class.name` in the How it works tab point at code that
    exists, so the text cannot drift from the code it cites; its sources section is there."""
    import ast
    import re
    from pathlib import Path

    from hashdemo.app.ui import HOW_IT_WORKS

    root = Path(__file__).resolve().parent.parent
    pointers = re.findall(r"`(hashdemo/[\w/]+\.py): ([\w.]+)`", HOW_IT_WORKS)
    assert len(pointers) >= 5 and "## Sources" in HOW_IT_WORKS
    for path, name in pointers:
        tree = ast.parse((root / path).read_text())
        defined = {
            f"{outer.name}.{inner.name}" if inner is not outer else outer.name
            for outer in tree.body
            if isinstance(outer, ast.ClassDef | ast.FunctionDef)
            for inner in [outer, *(outer.body if isinstance(outer, ast.ClassDef) else [])]
            if isinstance(inner, ast.ClassDef | ast.FunctionDef)
        }
        assert name in defined, (path, name)
