"""The app in a real browser: Debian's chromium driven by Playwright, against the real app on a loopback port.

Selection is by role, label and visible text. Gradio's Image/Gallery labels are not tied to their content
(`<label data-testid="block-label">` without `for`), so `block()` scopes a component by its visible label.
Waits are on conditions only. `HASHDEMO_SCREENSHOTS=1` also rewrites the five screenshots in assets/.
"""

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright

from hashdemo.app.presenter import EXPLANATIONS, SHOWN_MAPS, SHOWN_RESULTS
from hashdemo.data.fashion_mnist import CLASS_NAMES

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
ASSETS = Path(__file__).resolve().parent.parent / "assets"
TILE = re.compile(r"^Thumbnail \d+ of \d+$")
COARSE, RERANKED = "Global code only (top-K)", "Re-ranked on the L attention bits"
COMPOSED = "Top 20 for the composed code"

expect.set_options(timeout=30_000)  # handlers are CPU-bound and the machine may be busy


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(served, browser):
    _, url = served
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_role("tab", name="Attention & search")).to_be_visible()
    # the page opens with the last example searched: wait for it, so no test races it
    expect(page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))).to_be_visible()
    yield page
    context.close()


def _example(app, index: int) -> str:
    return str(app.EXAMPLES_DIR / f"query-{index}.png")


def block(page, label: str):
    """The component whose visible block label contains `label`."""
    return page.locator(".block").filter(has=page.get_by_test_id("block-label").filter(has_text=label))


def block_of(page, name: str):
    """The block holding one of the search tab's panels."""
    return page.locator(f"#{name}-panel")


def panel(page, name: str):
    """The picture of one of the search tab's panels (their titles sit above them, not on them)."""
    return page.locator(f"#{name}-panel img")


def tiles(page, label: str):
    return block(page, label).get_by_role("button", name=TILE)


def expect_image_loaded(page, img) -> None:
    img.scroll_into_view_if_needed()  # Gradio's images are loading="lazy"
    expect(img).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())


def expect_captions_name_classes(tile_buttons, count: int) -> list[str]:
    expect(tile_buttons).to_have_count(count)
    captions = tile_buttons.all_inner_texts()
    assert all(any(name in caption for name in CLASS_NAMES) for caption in captions), captions
    return captions


def upload_query(page, path: str) -> None:
    page.get_by_role("tab", name="Attention & search").click()
    block(page, "Query image").get_by_label("File upload").set_input_files(path)


def search(page, path: str) -> None:
    """Upload a query and wait until both result rows carry their P@10."""
    before = page.get_by_text(re.compile("^Query labels")).all_inner_texts()
    upload_query(page, path)
    expect(page.get_by_text(re.compile(rf"^{re.escape(COARSE)} · P@10 ="))).to_be_visible()
    expect(page.get_by_text(re.compile(rf"^{re.escape(RERANKED)} · P@10 ="))).to_be_visible()
    expect(tiles(page, RERANKED)).to_have_count(SHOWN_RESULTS)
    if before:  # a second search: wait for the new query's info line
        expect(page.get_by_text(re.compile("^Query labels"))).not_to_have_text(before[0])


def fill_slots(page, first: int, second: int) -> None:
    page.get_by_role("tab", name="Compose").click()
    examples = tiles(page, "Example images")
    examples.nth(first).click()
    expect(block(page, "Slot A").locator("img")).to_be_visible()
    expect(page.get_by_role("radio", name="Slot B", exact=True)).to_be_checked()
    examples.nth(second).click()
    expect(block(page, "Slot B").locator("img")).to_be_visible()
    expect(page.get_by_role("radio", name="Slot A", exact=True)).to_be_checked()


def compose(page, operator: str) -> None:
    page.get_by_role("radio", name=operator, exact=True).first.check()  # the first operator, not "then"
    page.get_by_role("button", name="Compose", exact=True).click()
    expect(page.get_by_text(f"Target set T = A {operator} B")).to_be_visible()
    expect(page.get_by_text("Predicted from the composed code")).to_be_visible()
    expect(tiles(page, COMPOSED)).to_have_count(20)


def test_search_shows_the_attention_panels_and_both_result_rows(served, page):
    app, _ = served
    search(page, _example(app, 0))
    for name in ("cam", "region", "strip"):
        expect_image_loaded(page, panel(page, name))
    expect(tiles(page, "3. Activation maps")).to_have_count(SHOWN_MAPS)
    expect_image_loaded(page, tiles(page, "3. Activation maps").first.locator("img"))
    info = page.get_by_text(re.compile(r"^Query labels: .+\. Selected \d+ of \d+ local bits"))
    expect(info).to_be_visible()
    for row in (COARSE, RERANKED):
        expect_captions_name_classes(tiles(page, row), SHOWN_RESULTS)
        expect_image_loaded(page, tiles(page, row).last.locator("img"))
    # selecting a re-ranked result explains it
    expect(explain(page, 0)).to_contain_text("It agrees with the query on")
    expect_image_loaded(page, panel(page, "why"))


def click_picture(page, img, x: float, y: float) -> None:
    """Click the pixel (x, y) of a picture's own resolution, wherever and however large it is drawn."""
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    scale = min(box["width"] / natural[0], box["height"] / natural[1])  # object-fit: contain
    left = box["x"] + (box["width"] - natural[0] * scale) / 2
    top = box["y"] + (box["height"] - natural[1] * scale) / 2
    page.mouse.click(left + x * scale, top + y * scale)


def test_pointing_at_the_object_and_clicking_a_bit(served, page):
    from hashdemo.app.pictures import STRIP_CELL, STRIP_LABEL_W, STRIP_TOP

    app, _ = served
    search(page, _example(app, 0))
    cam = panel(page, "cam")
    expect_image_loaded(page, cam)
    before = cam.get_attribute("src")
    click_picture(page, cam, 20, 20)
    expect(page.get_by_text("now click the opposite corner")).to_be_visible()
    expect(cam).not_to_have_attribute("src", before)  # issue 21, item 4: the first corner shows on panel 1
    marked = cam.get_attribute("src")
    click_picture(page, cam, 230, 230)
    expect(page.get_by_text("Your box replaces the attention region")).to_be_visible()
    expect(cam).not_to_have_attribute("src", marked)  # and then the box, on the picture that was clicked
    expect(tiles(page, RERANKED)).to_have_count(SHOWN_RESULTS)
    page.get_by_role("button", name="Clear my box").click()
    expect(page.get_by_text("Your box replaces the attention region")).to_be_hidden()
    strip = panel(page, "strip")
    expect_image_loaded(page, strip)
    click_picture(page, strip, STRIP_LABEL_W + 5 * STRIP_CELL + 6, STRIP_TOP + 6)  # global bit 5
    expect(page.get_by_text(re.compile(r"^Global bit 5 = [01]: its own CAM"))).to_be_visible()
    expect_image_loaded(page, panel(page, "bit"))


def test_changing_l_reranks(served, page):
    app, _ = served
    search(page, _example(app, 1))
    before = tiles(page, RERANKED).all_inner_texts()
    number = page.get_by_role("spinbutton", name="number input for L (selected local bits)")
    new_l = 2 if int(number.input_value()) > 4 else 48
    # Typing a value fires the slider's `release` when the box loses focus (Enter alone does not).
    number.fill(str(new_l))
    number.press("Tab")
    expect(page.get_by_text(re.compile(rf"Selected {new_l} of \d+ local bits"))).to_be_visible()
    after = expect_captions_name_classes(tiles(page, RERANKED), SHOWN_RESULTS)
    assert after != before
    # Dragging the range with the mouse fires `release` on pointerup.
    slider = page.get_by_role("slider", name="range slider for L (selected local bits)")
    top = slider.get_attribute("max")
    box = slider.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 40, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(number).to_have_value(top)
    expect(page.get_by_text(re.compile(rf"Selected {top} of {top} local bits"))).to_be_visible()
    expect(tiles(page, RERANKED)).not_to_have_text(after)


def explain(page, index: int, row: str = RERANKED):
    """Click result `index` of a row and return its "why" text. One click: a search answers in one event,
    so nothing arriving after the rows can clear the explanation (it used to, under load)."""
    tiles(page, row).nth(index).click()
    why = page.get_by_text(re.compile(rf"^Result {index + 1} of {re.escape(row)}: gallery #\d+"))
    expect(why).to_be_visible()
    return why


def open_explanations(page) -> None:
    """Open both explanations of the current search: a re-ranked result's "why" and a bit's view."""
    from hashdemo.app.pictures import STRIP_CELL, STRIP_LABEL_W, STRIP_TOP

    explain(page, 2)
    strip = panel(page, "strip")
    expect_image_loaded(page, strip)
    click_picture(page, strip, STRIP_LABEL_W + 3 * STRIP_CELL + 6, STRIP_TOP + 6)  # global bit 3
    expect(page.get_by_text(re.compile(r"^Global bit 3 = [01]"))).to_be_visible()


def expect_no_explanation_left(page) -> None:
    expect(page.get_by_text(re.compile(r"^Result 3 of .+: gallery #"))).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^Global bit 3 = "))).to_have_count(0)
    expect(page.get_by_text(EXPLANATIONS["why_text"])).to_be_visible()
    expect(page.get_by_text(EXPLANATIONS["bit_text"])).to_be_visible()
    expect(panel(page, "why")).to_have_count(0)
    expect(panel(page, "bit")).to_have_count(0)


def test_no_explanation_is_left_from_a_previous_query_or_l(served, page):
    """Issue 21, item 1: after another example, or a new L, the "why" and per-bit panels are cleared."""
    app, _ = served
    search(page, _example(app, 0))
    open_explanations(page)
    search(page, _example(app, 1))
    expect_no_explanation_left(page)
    open_explanations(page)
    number = page.get_by_role("spinbutton", name="number input for L (selected local bits)")
    number.fill("9")
    number.press("Tab")
    expect(page.get_by_text(re.compile(r"Selected 9 of \d+ local bits"))).to_be_visible()
    expect_no_explanation_left(page)


def test_side_by_side_shows_every_method_for_the_current_query(served, page):
    """Issue 21: the top 10 of every method for one query, P@10 and the attended item marked; it follows
    each new query and L, and gains the box's row once the object is boxed."""
    app, _ = served
    search(page, _example(app, 0))
    page.get_by_text("Side by side: every method's top 10 for this query").click()
    table = page.locator("#side-by-side table")
    # the first open encodes the peers' galleries (once; then cached on disk): on a fresh cache it waits
    expect(table.get_by_role("cell", name="global", exact=True)).to_be_visible(timeout=240_000)
    for method in ("global", "local_full", "hier_cam", "hier_random", "hier_activation"):
        expect(table.get_by_role("cell", name=method, exact=True)).to_be_visible()
    expect(table.get_by_role("cell", name="hier_box", exact=True)).to_have_count(0)
    attended = re.compile(r"The attention region sits on the query's \*?\*?(\w[\w/ -]*)")
    expect(page.locator("#side-by-side").get_by_text(attended)).to_be_visible()
    expect_image_loaded(page, panel(page, "side"))
    first = panel(page, "side").get_attribute("src")
    defaults = app.engine.defaults
    query = app.engine.make_query(app.engine.examples["query-1"][0])
    expected = app.engine.compare(query, defaults["theta"], defaults["L"], defaults["K"])
    search(page, _example(app, 1))
    row = table.locator("tr", has=page.get_by_role("cell", name="hier_cam", exact=True))
    expect(row).to_contain_text(f"{expected.rows['hier_cam'].precision_at(10):.1f}")
    expect(panel(page, "side")).not_to_have_attribute("src", first)
    cam = panel(page, "cam")
    expect_image_loaded(page, cam)
    before = cam.get_attribute("src")
    click_picture(page, cam, 40, 40)
    # the second corner goes on the picture that shows the first (a click on the one being replaced is lost)
    expect(page.get_by_text("now click the opposite corner")).to_be_visible()
    expect(cam).not_to_have_attribute("src", before)
    expect_image_loaded(page, cam)
    click_picture(page, cam, 160, 160)
    expect(page.get_by_text("Your box replaces the attention region")).to_be_visible()
    expect(table.get_by_role("cell", name="hier_box", exact=True)).to_be_visible()


def test_the_why_panel_tells_a_relevant_result_from_an_irrelevant_one(served, page):
    """Issue 21, item 5: the explanation says whether the result shares a label, and its distances
    beyond the selected bits (which are often all equal in the top 10)."""
    app, _ = served
    search(page, _example(app, 0))
    why = explain(page, 0)
    expect(why).to_contain_text(re.compile(r"shares (a|no) label"))
    expect(why).to_contain_text(re.compile(r"on \d+ of 256 bits of the full local code \(d = \d+\)"))
    expect(why).to_contain_text(re.compile(r"global distance is d_g = \d+"))
    # issue 37, item 5: the match, where the query's selected maps fire in the result, beside its region
    expect(why).to_contain_text(re.compile(r"right: the query's \d+ selected maps, averaged"))
    expect_image_loaded(page, panel(page, "why"))
    width, height = panel(page, "why").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width > 2 * height - 20, (width, height)  # two pictures side by side


def test_compose_each_operator_from_example_tiles(page):
    fill_slots(page, 2, 5)
    for operator in ("union", "intersection", "difference"):
        compose(page, operator)
        expect_captions_name_classes(tiles(page, COMPOSED), 20)


def caption_lines(page, row: str) -> int:
    """The most lines any caption of a row's tiles takes."""
    return (
        tiles(page, row)
        .locator(".caption-label")
        .evaluate_all(
            "cs => Math.max(...cs.map(c => Math.round(c.getBoundingClientRect().height"
            " / parseFloat(getComputedStyle(c).lineHeight))))"
        )
    )


def test_the_baselines_toggle_shows_every_route_s_exact_matches(served, page):
    """Issue 22: with the toggle, the summary's exact-match count for the composed code is joined by
    bitwise's and the label route's, the engine's own counts for this pair."""
    app, _ = served
    fill_slots(page, 2, 5)
    compose(page, "union")
    line = page.locator("#compose-baselines")
    expect(line).to_be_hidden()
    alone = caption_lines(page, COMPOSED)
    page.get_by_label("Show the baselines", exact=False).check()
    images = [app.engine.examples[f"query-{i}"][0] for i in (2, 5)]
    answer = app.engine.compose(*images, "union")
    counts = [answer.exact_in_top(r) for r in (answer.composed, answer.bitwise, answer.label_route)]
    expect(line).to_have_text(
        "Exactly T in the top 10: composed code (DCOH) {} · bitwise {} · label route {} (of 10).".format(
            *counts
        )
    )
    expect(tiles(page, "Bitwise baseline")).to_have_count(20)
    # issue 37, defect 6: neither row cut at the right, the composed captions no taller than without it
    page.wait_for_timeout(300)
    for row in (COMPOSED, "Bitwise baseline"):
        for tile in (tiles(page, row).nth(4), tiles(page, row).nth(19)):
            edge = tile.bounding_box()
            assert edge["x"] + edge["width"] <= VIEWPORT["width"] + 1, (row, edge)
    assert caption_lines(page, COMPOSED) == alone <= 4, alone
    assert caption_lines(page, "Bitwise baseline") <= 4
    compose(page, "intersection")  # a new composition: the line is its own
    answer = app.engine.compose(*images, "intersection")
    expect(line).to_contain_text(f"label route {answer.exact_in_top(answer.label_route)} (of 10)")
    page.get_by_label("Show the baselines", exact=False).uncheck()
    expect(line).to_be_hidden()


def drag(page, source, target) -> None:
    """A real mouse drag: press on `source`, move in steps onto `target`, release. Both must be on screen
    (the page does not scroll while the button is down), so the drag tests use a tall viewport."""
    start, end = source.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


TALL = {"width": 1400, "height": 2600}  # slots, example tiles and results on one screen


def test_dragging_tiles_onto_the_slots_fills_them_and_recomputes(page):
    page.set_viewport_size(TALL)
    page.get_by_role("tab", name="Compose").click()
    examples = tiles(page, "Example images")
    summary = page.get_by_text(re.compile(r"^A: .+ · B: .+"))
    drag(page, examples.nth(2).locator("img"), block(page, "Slot A"))
    expect(block(page, "Slot A").locator("img")).to_be_visible()
    expect(page.get_by_text("Fill slots A and B to compose.")).to_be_visible()
    drag(page, examples.nth(5).locator("img"), block(page, "Slot B"))
    expect(block(page, "Slot B").locator("img")).to_be_visible()
    expect(page.get_by_text("Target set T = A union B")).to_be_visible()
    expect(tiles(page, COMPOSED)).to_have_count(20)
    first = summary.inner_text()
    # a result tile dropped on a filled slot replaces its image (never clears it) and recomputes
    drag(page, tiles(page, COMPOSED).nth(3).locator("img"), block(page, "Slot A"))
    expect(summary).not_to_have_text(first)
    expect(summary).not_to_contain_text("labels unknown")  # the tile became its gallery image
    expect(block(page, "Slot A").locator("img")).to_be_visible()
    second = summary.inner_text()
    drag(page, examples.nth(7).locator("img"), block(page, "Slot B"))
    expect(summary).not_to_have_text(second)
    expect(tiles(page, COMPOSED)).to_have_count(20)


def test_a_chain_of_two_operators_on_three_slots(page):
    page.set_viewport_size(TALL)
    fill_slots(page, 2, 5)
    compose(page, "union")
    drag(page, tiles(page, "Example images").nth(8).locator("img"), block(page, "Slot C"))
    expect(block(page, "Slot C").locator("img")).to_be_visible()
    page.get_by_role("radio", name="intersection", exact=True).last.check()  # the "then" operator
    expect(page.get_by_text("Target set T = (A union B) intersection C")).to_be_visible()
    expect(tiles(page, COMPOSED)).to_have_count(20)


def toast_count(page, text: str) -> int:
    """How many error/warning messages on screen say `text` (Gradio stacks repeats in one toast)."""
    return sum(body.count(text) for body in page.locator(".toast-body").all_inner_texts())


def srcs(page, names) -> list[str]:
    return [panel(page, name).get_attribute("src") for name in names]


SHOWN_BADGE = """() => [...document.querySelectorAll('[data-testid=status-tracker]')]
    .filter(t => /Error/.test(t.textContent))
    .filter(t => t.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}))
    .map(t => (t.closest('.block') || t).id || 'a block')"""


def test_a_bad_file_or_a_cleared_query_leaves_the_panels_as_they_were(served, page, tmp_path):
    app, _ = served
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    names = ("cam", "region", "scores", "strip")
    before, first_tile = srcs(page, names), tiles(page, RERANKED).first.locator("img").get_attribute("src")
    query_picture = block(page, "Query image").locator("img")
    shown_query = query_picture.get_attribute("src")
    upload_query(page, str(text))
    message = "A query image: This file is not an image"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(query_picture).to_have_attribute("src", shown_query)  # the box shows the query again
    assert toast_count(page, message) == 1
    assert srcs(page, names) == before
    assert tiles(page, RERANKED).first.locator("img").get_attribute("src") == first_tile
    assert page.evaluate(SHOWN_BADGE) == []
    # clearing the box is not a request: no message; the next search then works as usual
    block(page, "Query image").get_by_role("button", name="Remove Image").click()
    expect(query_picture).to_have_count(0)
    search(page, _example(app, 3))
    assert toast_count(page, "Please provide") == 0 and page.evaluate(SHOWN_BADGE) == []
    assert srcs(page, names) != before
    # a compose slot checks its upload: one message, and the slot is left empty
    page.get_by_role("tab", name="Compose").click()
    block(page, "Slot A").get_by_label("File upload").set_input_files(str(text))
    message = "The image in slot A: This file is not an image"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(block(page, "Slot A").locator("img")).to_have_count(0)
    expect(page.get_by_text("Fill slots A and B to compose.")).to_be_visible()
    assert toast_count(page, message) == 1
    assert page.evaluate(SHOWN_BADGE) == []


def test_a_bad_file_on_a_filled_slot_keeps_the_slot_and_the_results(page, tmp_path):
    """Issue 21, item 3: one message; the slot keeps its image and the results stay."""
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    fill_slots(page, 2, 5)
    expect(tiles(page, COMPOSED)).to_have_count(20)
    slot_a = block(page, "Slot A").locator("img")
    shown, first = (
        slot_a.get_attribute("src"),
        tiles(page, COMPOSED).first.locator("img").get_attribute("src"),
    )
    block(page, "Slot A").get_by_label("File upload").set_input_files(str(text))
    message = "The image in slot A: This file is not an image"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(slot_a).to_have_attribute("src", re.compile(re.escape(Path(shown.split("?")[0]).name)))
    expect(tiles(page, COMPOSED)).to_have_count(20)
    assert tiles(page, COMPOSED).first.locator("img").get_attribute("src") == first
    assert toast_count(page, message) == 1


def test_pick_any_image_by_id_or_at_random(served, page):
    """Issue 21: a query-split or gallery image by its id, and a random example; labels known."""
    app, _ = served
    before = page.get_by_text(re.compile("^Query labels")).inner_text()
    page.get_by_role("radio", name="gallery", exact=True).check()
    page.get_by_role("spinbutton", name="Image id").fill("5")
    page.get_by_role("button", name="Show this image").click()
    labels = app.engine.label_text(app.engine.gallery_labels[5])
    expect(page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\."))).to_be_visible()
    page.get_by_role("spinbutton", name="Image id").fill("99999")
    page.get_by_role("button", name="Show this image").click()
    expect(
        page.locator(".toast-body").filter(has_text="A gallery id must be an integer between 0 and")
    ).to_be_visible()
    page.get_by_role("button", name="Random example").click()
    expect(page.get_by_role("radio", name="query", exact=True)).to_be_checked()
    expect(page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))).not_to_have_text(before)


def test_a_link_restores_the_view_and_a_bad_link_says_why(served, browser):
    """Issue 21: the URL carries the query (split and id), theta, L, K and the box."""
    app, url = served
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url + "?split=gallery&id=5&theta=0.5&L=16&K=300&box=10,10,40,40")
    labels = app.engine.label_text(app.engine.gallery_labels[5])
    expect(
        page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected 16 of"))
    ).to_be_visible()
    expect(page.get_by_text("Your box replaces the attention region")).to_be_visible()
    link = page.locator("label", has_text="Link to this view").locator("textarea, input").first
    expect(link).to_have_value(url + "?split=gallery&id=5&theta=0.5&L=16&K=300&box=10%2C10%2C40%2C40")
    page.goto(url + "?split=gallery&id=99999&L=abc")
    expect(page.locator(".toast-body").filter(has_text="The link's query was not used")).to_be_visible()
    expect(page.locator(".toast-body").filter(has_text="The link's L was not used")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))).to_be_visible()  # the default view
    context.close()


def test_a_composition_link_opens_compose_with_its_slots_and_a_bad_one_says_why(served, browser):
    """Issue 21: the URL carries a composition (each slot by split and id, the operators) and the tab."""
    app, url = served
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url + "?a=query:2&b=gallery:5&op=intersection")
    expect(page.get_by_role("tab", name="Compose", selected=True)).to_be_visible()
    expect(page.get_by_text("Target set T = A intersection B")).to_be_visible()
    labels = app.engine.label_text(app.engine.gallery_labels[5])
    expect(page.get_by_text(f"B: {labels}")).to_be_visible()
    link = page.locator("label", has_text="Link to this composition").locator("textarea, input").first
    expect(link).to_have_value(url + "?tab=compose&a=query%3A2&b=gallery%3A5&op=intersection")
    page.goto(url + "?tab=benchmarks")
    expect(page.get_by_role("tab", name="Benchmarks", selected=True)).to_be_visible()
    page.goto(url + "?a=query:2&b=gallery:99999&op=union")
    expect(page.locator(".toast-body").filter(has_text="The link's composition was not used")).to_be_visible()
    expect(page.get_by_text("Fill slots A and B to compose.")).to_be_attached()
    context.close()


def download(page, button: str):
    with page.expect_download() as started:
        page.get_by_role("button", name=button).click()
    return started.value


def test_downloads_carry_the_codes_figures_and_link_under_names_that_say_what(served, page):
    """Issue 30, item 10: the JSON and CSV of a search and of a composition hold the query's codes, the
    parameters, both distances by name, relevance, the per-query figures and the link, in files named
    for what they hold (they follow the search in the same event: the first download is this query's)."""
    app, _ = served
    engine, L = app.engine, app.engine.defaults["L"]
    saved = download(page, "Download this result (JSON)")
    assert saved.suggested_filename == "hashdemo-search-query-11-K1000-top100.json"
    document = json.loads(Path(saved.path()).read_text())
    assert document["query_labels"] == engine.label_text(engine.examples["query-11"][1])
    assert re.fullmatch("[01]{32}", document["query_H_g"])
    assert re.fullmatch("[01]{256}", document["query_H_l"])
    assert len(document["selected_bits"]) == document["L"] == L and document["K"] == 1000
    assert page.url.endswith(document["link"]) and set(document["figures"]) == {"global_only", "reranked"}
    assert document["figures"]["reranked"]["ap_at_100"] >= 0
    rows = [r for r in document["rows"] if r["row"] == "reranked"]
    # issue 37, defect 13: the file holds each row's first 100 (its name says so): AP@100 recomputes
    assert len(rows) == 100 and all(isinstance(r["d_L"], int) and "d_g" in r for r in rows)
    assert all(isinstance(r["shares_a_label"], bool) for r in rows)
    relevant = np.array([r["shares_a_label"] for r in rows[:100]], float)
    hits = np.cumsum(relevant) / np.arange(1, 101)
    ap100 = float((hits * relevant).sum() / relevant.sum()) if relevant.any() else 0.0
    assert document["figures"]["reranked"]["ap_at_100"] == pytest.approx(ap100, abs=1e-6)
    assert document["attended_item"] in CLASS_NAMES and all(
        isinstance(r["holds_attended_item"], bool) for r in rows
    )
    shown = tiles(page, RERANKED).all_inner_texts()
    for record, caption in zip(rows, shown, strict=False):  # the page shows the first ten
        assert caption.startswith(f"#{record['gallery_id']} · {record['labels']}")
    saved = download(page, "Download (CSV)")
    assert saved.suggested_filename == "hashdemo-search-query-11-K1000-top100.csv"
    lines = list(csv.DictReader(Path(saved.path()).read_text().splitlines()))
    assert len(lines) == 2 * 100 and {"gallery_id", "d_g", "d_L", "shares_a_label", "link"} <= set(lines[0])
    assert {"query_H_l", "figures", "selected_bits"}.isdisjoint(lines[0])  # the JSON's, not on every line
    assert "holds_attended_item" in lines[0]
    page.get_by_role("tab", name="Compose").click()
    page.get_by_role("button", name="Preset: union").click()
    expect(page.get_by_text("Target set T = A union B")).to_be_visible()
    saved = download(page, "Download this composition (JSON)")
    operators, ids = engine.presets()["union"]
    assert saved.suggested_filename == f"hashdemo-compose-query-{ids[0]}-union-query-{ids[1]}.json"
    document = json.loads(Path(saved.path()).read_text())
    assert re.fullmatch("[01]+", document["composed_code"]) and set(document["slot_codes"]) == {"A", "B"}
    assert document["figures"]["composed"]["shown"] == 10 and document["operators"] == ["union"]
    assert {r["row"] for r in document["rows"]} == {"composed", "bitwise"}
    assert "exactly_T" in document["rows"][0]


def test_compose_presets_always_have_a_target_the_gallery_holds(page):
    page.get_by_role("tab", name="Compose").click()
    for name, expression in (("union", "A union B"), ("(union) then difference", "(A union B) difference C")):
        page.get_by_role("button", name=f"Preset: {name}").click()
        expect(page.get_by_text(f"Target set T = {expression}")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Top 10 with exactly T: [1-9]\d* of 10"))).to_be_visible()


def test_an_out_of_range_number_goes_back_to_the_value_in_use(page):
    number = page.get_by_role("spinbutton", name="number input for L (selected local bits)")
    slider = page.get_by_role("slider", name="range slider for L (selected local bits)")
    used = number.input_value()
    too_many = int(slider.get_attribute("max")) + 50
    number.fill(str(too_many))
    number.press("Tab")
    message = f"L (selected local bits) must be an integer between 1 and {slider.get_attribute('max')}"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(number).to_have_value(used)
    expect(slider).to_have_value(used)
    expect(page.get_by_text(re.compile(rf"Selected {used} of \d+ local bits"))).to_be_visible()


def test_an_image_unlike_the_training_data_gets_a_note_and_an_example_does_not(served, page, tmp_path):
    from PIL import Image

    app, _ = served
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise)
    note = page.get_by_text("This image looks unlike the outfits the models were trained on")
    expect(note).to_be_hidden()  # the example searched on load
    upload_query(page, str(noise))
    expect(note).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Query labels unknown"))).to_be_visible()
    # clicking an example query searches it: its labels, and no note
    page.locator('img[src$="query-0.png"]').first.click()
    labels = app.engine.label_text(app.engine.examples["query-0"][1])
    expect(page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected"))).to_be_visible()
    expect(note).to_be_hidden()


def test_a_smooth_gradient_is_called_a_picture_without_items(served, page, tmp_path):
    """Issue 21, item 8: a photo-like gradient (no items) used to pass the out-of-domain check."""
    from PIL import Image

    rows = np.linspace(0.0, 1.0, 512)[:, None, None]
    picture = (np.array([20, 40, 160]) * (1 - rows) + np.array([230, 120, 40]) * rows).repeat(512, axis=1)
    path = tmp_path / "gradient.png"
    Image.fromarray(picture.astype(np.uint8)).save(path)
    note = page.get_by_text("This picture is smooth, with no items in it")
    expect(note).to_be_hidden()
    upload_query(page, str(path))
    expect(note).to_be_visible()


def test_the_first_results_show_without_scrolling_past_empty_panels(served, browser):
    _, url = served
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    first = tiles(page, COARSE).first.locator("img")
    expect(first).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    top = first.bounding_box()["y"]
    assert top < 1.5 * 900, top
    empty_above = page.evaluate(
        """top => [...document.querySelectorAll('[id$="-panel"]')]
            .filter(p => p.offsetParent && p.getBoundingClientRect().top < top)
            .filter(p => !p.querySelector('img[src]'))
            .map(p => p.id)""",
        top,
    )
    assert empty_above == []
    context.close()


def test_the_first_screen_holds_the_query_panels_both_rows_and_the_notes(served, browser):
    """Issue 21, item 2: at 1400x900, without scrolling: the query, panels 1-2, the notes and the
    pictures of both result rows."""
    _, url = served
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    info = page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))
    expect(info).to_be_visible()
    pictures = [block(page, "Query image").locator("img"), panel(page, "cam"), panel(page, "region")]
    for row in (COARSE, RERANKED):
        expect(tiles(page, row)).to_have_count(SHOWN_RESULTS)
        pictures += [tiles(page, row).nth(i).locator("img") for i in range(SHOWN_RESULTS)]
    for element in [info, *pictures]:
        box = element.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 900 and box["x"] + box["width"] <= 1400, box
    # the re-rank's ties sit right under its row, counted over the K candidates
    ties = page.locator("#rerank-ties")
    expect(ties).to_contain_text(re.compile(r"d_L over the K = 1000 candidates \(value: count\): 0: \d+"))
    last_tile = pictures[-1].bounding_box()
    assert ties.bounding_box()["y"] >= last_tile["y"] + last_tile["height"]
    context.close()


def test_benchmark_tables_fit_the_page_at_1400(served, browser):
    """Issue 21, item 6: the first (widest) results table was cut at the right edge."""
    _, url = served
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url + "?tab=benchmarks")
    expect(page.get_by_role("heading", name=re.compile("^Hierarchical hashing"))).to_be_visible()
    widths = page.evaluate(
        "() => [...document.querySelectorAll('table')].filter(t => t.offsetParent)"
        ".map(t => [t.scrollWidth, t.clientWidth])"
    )
    assert widths and all(scroll <= client + 1 for scroll, client in widths), widths
    context.close()


OVERFLOWING = """() => [...document.querySelectorAll('.block, .grid-wrap, .grid-container, [id$="-panel"]')]
    .filter(e => e.offsetParent && !e.closest('table') && !e.closest('.scroll-wide')
        && e.scrollWidth > e.clientWidth + 1)
    .map(e => `${e.id || e.className} ${e.scrollWidth} > ${e.clientWidth}`)"""
PHONE = {"width": 390, "height": 844}


def test_phone_panels_do_not_scroll_sideways_and_tables_scroll_as_tables(served, browser):
    _, url = served
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(url)
    expect(tiles(page, RERANKED)).to_have_count(SHOWN_RESULTS)
    _load_all_images(page)
    assert page.evaluate(OVERFLOWING) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # issue 30, item 6: the overlap-score chart keeps its drawn size (legible text) and scrolls sideways
    scores = panel(page, "scores")
    assert scores.bounding_box()["width"] == pytest.approx(scores.evaluate("i => i.naturalWidth"), abs=1)
    # issue 21, item 7: the code rows keep their own size (12 px a bit, tappable) and scroll sideways,
    # with no fullscreen icon over the row ends; a tap on a bit still opens it
    from hashdemo.app.pictures import STRIP_CELL, STRIP_LABEL_W, STRIP_TOP

    strip = panel(page, "strip")
    natural = strip.evaluate("i => i.naturalWidth")
    assert strip.bounding_box()["width"] == pytest.approx(natural, abs=1), "the code rows shrank"
    assert block_of(page, "strip").get_by_role("button", name=re.compile("ullscreen")).count() == 0
    click_picture(page, strip, STRIP_LABEL_W + 3 * STRIP_CELL + 6, STRIP_TOP + 6)  # global bit 3
    expect(page.get_by_text(re.compile(r"^Global bit 3 = [01]"))).to_be_visible()
    page.get_by_role("tab", name="Compose").click()
    expect(tiles(page, "Example images")).to_have_count(12)
    assert clipped_captions(page) == 0  # issue 30, item 6: the compose tiles' captions are whole
    assert page.evaluate(OVERFLOWING) == []
    expect(page.get_by_role("button", name="More tabs")).to_have_count(0)  # issue 30: all four tabs show
    page.get_by_role("tab", name="Benchmarks").click()
    expect(page.get_by_role("heading", name=re.compile("^Hierarchical hashing"))).to_be_visible()
    _load_all_images(page)
    assert page.evaluate(OVERFLOWING) == []
    tables = table_layouts(page)
    assert tables and any(table["wider"] for table in tables)  # the wide ones scroll inside themselves
    for table in tables:
        assert table["scrolls"] in ("auto", "scroll"), table
        assert table["narrowest"] >= 40 and table["lines"] == 1, table  # never a character per line
    charts = page.locator("img[src*='figure-']")
    expect(charts.first).to_be_visible()
    # figures keep their drawn size (legible text) and scroll sideways inside their block
    for chart in charts.all():
        assert chart.bounding_box()["width"] >= chart.evaluate("i => i.naturalWidth") - 1
    context.close()


TABLE_LAYOUTS = """() => [...document.querySelectorAll('table')].filter(t => t.offsetParent).map(t => {
    const cells = [...t.querySelectorAll('th, td')].filter(c => c.textContent.trim());
    const lines = c => { const r = document.createRange(); r.selectNodeContents(c);
        return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; };
    return {scrolls: getComputedStyle(t).overflowX, wider: t.scrollWidth > t.clientWidth,
            narrowest: Math.min(...cells.map(c => c.getBoundingClientRect().width)),
            lines: Math.max(...cells.map(lines))};
})"""


def table_layouts(page) -> list[dict]:
    """Each visible table: whether it scrolls sideways, is wider than its box, its narrowest cell and the
    most lines a cell's text takes."""
    return page.evaluate(TABLE_LAYOUTS)


def test_the_side_by_side_table_scrolls_on_a_phone_instead_of_breaking_words(served, browser):
    """Issue 37, defect 11: at 390 px the side-by-side table kept every word whole ("two-level", not
    "two - lev el"): it scrolls as a table."""
    _, url = served
    context, page = new_page(browser, url, PHONE)
    expect(tiles(page, RERANKED)).to_have_count(SHOWN_RESULTS)
    page.get_by_text("Side by side: every method's top 10 for this query").click()
    table = page.locator("#side-by-side table")
    expect(table).to_be_visible()
    expect(table.get_by_role("cell", name="hier_cam", exact=True)).to_be_visible()
    for layout in table_layouts(page):
        assert layout["scrolls"] in ("auto", "scroll") and layout["narrowest"] >= 60, layout
    broken = page.evaluate(
        """() => [...document.querySelectorAll('#side-by-side td, #side-by-side th')].filter(c => {
            const r = document.createRange(); r.selectNodeContents(c);
            // lines: tops more than 4 px apart (an inline box and its text sit a pixel or two apart)
            const tops = [...r.getClientRects()].filter(x => x.width > 0).map(x => x.top)
                .sort((a, b) => a - b);
            const lines = tops.filter((top, i) => i === 0 || top - tops[i - 1] > 4).length;
            return lines > c.textContent.trim().split(/\\s+/).length;  // a break inside a word
        }).map(c => c.textContent)"""
    )
    assert broken == [], broken
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


def _load_all_images(page) -> None:
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(img => { img.loading = 'eager'; })")
    page.wait_for_function(
        "[...document.querySelectorAll('img')].filter(i => i.offsetParent).every(i => i.complete)"
    )


@pytest.mark.skipif(os.environ.get("HASHDEMO_SCREENSHOTS") != "1", reason="set HASHDEMO_SCREENSHOTS=1")
def test_save_screenshots(served, page):
    app, _ = served
    ASSETS.mkdir(exist_ok=True)
    search(page, _example(app, 0))
    _load_all_images(page)
    page.screenshot(path=ASSETS / "screenshot_search.png", full_page=True)

    fill_slots(page, 2, 5)
    page.get_by_label("Show the baselines", exact=False).check()
    compose(page, "union")
    expect(tiles(page, "Bitwise baseline")).to_have_count(20)
    _load_all_images(page)
    page.screenshot(path=ASSETS / "screenshot_compose.png", full_page=True)

    page.get_by_role("tab", name="Benchmarks").click()
    expect(page.get_by_role("heading", name=re.compile("^Hierarchical hashing"))).to_be_visible()
    _load_all_images(page)
    page.screenshot(path=ASSETS / "screenshot_benchmarks.png", full_page=True)

    page.get_by_role("tab", name="How it works").click()
    expect(page.get_by_role("heading", name=re.compile("^1. Hierarchical hashing"))).to_be_visible()
    page.wait_for_function("document.querySelectorAll('.katex').length > 0")
    page.screenshot(path=ASSETS / "screenshot_how.png", full_page=True)

    page.set_viewport_size(PHONE)
    page.get_by_role("tab", name="Attention & search").click()
    expect(tiles(page, RERANKED)).to_have_count(SHOWN_RESULTS)
    _load_all_images(page)
    page.get_by_text(re.compile(rf"^{re.escape(COARSE)} · P@10")).evaluate("e => e.scrollIntoView()")
    page.screenshot(path=ASSETS / "screenshot_phone.png")  # a phone's screen at the first result row


# ---------------------------------------------------------------------------------------- issue 30

K_LABEL, THETA_LABEL, L_LABEL = (
    "K (coarse candidates)",
    "theta (binarisation threshold)",
    "L (selected local bits)",
)
IN_VIEW = """e => { const r = e.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }"""


def set_number(page, label: str, value) -> None:
    """Type a value into a slider's number box and press Enter, as the issue's steps do."""
    box = page.get_by_role("spinbutton", name=f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")


def link_box(page, label: str = "Link to this view"):
    return page.locator("label", has_text=label).locator("textarea, input").first


def expect_in_view(page, locator) -> None:
    """Wait until the element is wholly inside the viewport (the page scrolls to it, or it is there)."""
    page.wait_for_function(IN_VIEW, arg=locator.element_handle())


def toasts(page) -> list[str]:
    return page.locator(".toast-body").all_inner_texts()


def new_page(browser, url: str, viewport=VIEWPORT):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_role("tab", name="Attention & search")).to_be_visible()
    return context, page


def test_a_small_k_leaves_nothing_stale(served, page):
    """Issue 30, item 1: result 5 explained, then K = 5 typed: the why panel, the link, the address, the
    download and the side-by-side view are K = 5's (the side-by-side picture failed on rows of unequal
    length and left all of them stale); P@k is named for the tiles shown (item 9), down to K = 1."""
    page.get_by_text("Side by side: every method's top 10 for this query").click()
    side = panel(page, "side")
    expect_image_loaded(page, side)
    before = side.get_attribute("src")
    explain(page, 4)
    set_number(page, K_LABEL, 5)
    header = page.locator("#reranked-header")
    expect(header).to_contain_text("P@5 = ")
    expect(header).to_contain_text("(K = 5: the row holds only 5)")
    expect(tiles(page, RERANKED)).to_have_count(5)
    expect(page.get_by_text(EXPLANATIONS["why_text"])).to_be_visible()
    expect(link_box(page)).to_have_value(re.compile(r"[?&]K=5$"))
    expect(page).to_have_url(re.compile(r"[?&]K=5$"))
    row = page.locator("#side-by-side tr", has=page.get_by_role("cell", name="hier_cam", exact=True))
    expect(row).to_contain_text("(P@5)")
    expect(side).not_to_have_attribute("src", before)
    document = json.loads(Path(download(page, "Download this result (JSON)").path()).read_text())
    assert document["K"] == 5 and len([r for r in document["rows"] if r["row"] == "reranked"]) == 5
    set_number(page, K_LABEL, 1)
    expect(header).to_contain_text("P@1 = ")
    expect(page.locator("#coarse-header")).not_to_contain_text("P@10")
    assert not [text for text in toasts(page) if "Error" in text], toasts(page)


def test_a_link_cannot_lock_the_sliders_and_every_bad_value_is_named(served, browser):
    """Issue 30, item 2 (and item 6's link warnings): a K beyond the slider is refused by the link, so
    later moves of theta work; theta=abc&L=9999 names both; no message ends in "..\""""
    _, url = served
    context, page = new_page(browser, url + "?id=3&K=5000")
    message = (
        "The link's K was not used: K (coarse candidates) must be an integer between 1 and 2000 (got '5000')."
    )
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(page.get_by_role("spinbutton", name=f"number input for {K_LABEL}")).to_have_value("1000")
    expect(page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))).to_be_visible()
    set_number(page, THETA_LABEL, 0.5)
    expect(link_box(page)).to_have_value(re.compile(r"theta=0.5&L=\d+&K=1000$"))
    assert not [text for text in toasts(page) if "greater than" in text], toasts(page)
    page.goto(url + "?theta=abc&L=9999")
    for name in ("theta", "L"):
        expect(page.locator(".toast-body").filter(has_text=f"The link's {name} was not used")).to_be_visible()
    assert not [text for text in toasts(page) if ".." in text], toasts(page)
    context.close()


def test_a_k_typed_past_the_slider_is_refused_and_searches_nothing(served, page):
    """Issue 37, defect 8: K = 5000 typed in the number box is named (1 to 2000, the page's limit), the
    results, the address bar and the box keep the K in use; no search with AP@5000 runs."""
    box = page.get_by_role("spinbutton", name=f"number input for {K_LABEL}")
    used, header = box.input_value(), page.locator("#reranked-header")
    before = header.inner_text()
    set_number(page, K_LABEL, 5000)
    message = "K (coarse candidates) must be an integer between 1 and 2000 (got 5000"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(box).to_have_value(used)
    expect(header).to_have_text(before)  # once the refused event's queue badge is gone: the same answer
    assert "K=5000" not in page.url and "K=5000" not in link_box(page).input_value()


def test_the_answer_is_on_the_first_screen_after_composing_on_a_desktop_and_a_phone(served, browser):
    """Issue 30, items 3 and 4: at 1400x900 a preset or two tile clicks show the summary and the top tiles
    without scrolling; on a phone a preset, and a tapped example query, bring the answer into view."""
    _, url = served
    context, page = new_page(browser, url + "?tab=compose", {"width": 1400, "height": 900})
    summary = page.locator("#compose-summary")
    page.get_by_role("button", name="Preset: union").click()
    expect(page.get_by_text("Target set T = A union B")).to_be_visible()
    expect_in_view(page, summary)
    expect_in_view(page, tiles(page, COMPOSED).nth(4))
    fill_slots(page, 2, 5)
    expect(page.get_by_text(re.compile(r"^A: .+ · B: .+"))).to_be_visible()
    expect_in_view(page, tiles(page, COMPOSED).first)
    page.set_viewport_size(PHONE)
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_role("button", name="Preset: intersection").click()
    expect(page.get_by_text("Target set T = A intersection B")).to_be_visible()
    expect_in_view(page, summary.get_by_text("Target set T"))
    page.get_by_role("tab", name="Attention & search").click()
    page.evaluate("window.scrollTo(0, 0)")
    page.locator('img[src$="query-3.png"] >> visible=true').first.click()
    expect(page).to_have_url(re.compile(r"[?&]id=3&"))
    expect_in_view(page, tiles(page, COARSE).first.locator("img"))
    context.close()


DROP_TEXT = """selector => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(["not an image\\n"], "notes.txt", {type: "text/plain"}));
    const target = document.querySelector(selector);
    for (const kind of ["dragenter", "dragover", "drop"])
        target.dispatchEvent(new DragEvent(kind, {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def test_a_dropped_text_file_is_named_and_changes_nothing(page):
    """Issue 30, item 5: a .txt dropped on the query box or on a filled slot: one sentence, and the box,
    the panels and the results stay as they were (the slot used to empty and the results go)."""
    names = ("cam", "region", "strip")
    query_picture = block(page, "Query image").locator("img")
    shown, before = query_picture.get_attribute("src"), srcs(page, names)
    page.evaluate(DROP_TEXT, "#query-image .upload-container")
    message = "notes.txt is not an image: drop an image file on the query box"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(query_picture).to_have_attribute("src", shown)
    assert srcs(page, names) == before
    page.get_by_role("tab", name="Compose").click()
    page.get_by_role("button", name="Preset: union").click()
    expect(tiles(page, COMPOSED)).to_have_count(20)
    first = tiles(page, COMPOSED).first.locator("img").get_attribute("src")
    page.evaluate(DROP_TEXT, "#slot-a .upload-container")
    message = "notes.txt is not an image: drop an image file on slot A"
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(block(page, "Slot A").locator("img")).to_have_count(1)
    expect(page.get_by_text("Target set T = A union B")).to_be_visible()
    assert tiles(page, COMPOSED).first.locator("img").get_attribute("src") == first
    assert toast_count(page, "notes.txt") == 2


def test_the_address_bar_is_the_link_reload_and_back_restore_the_view(served, page, tmp_path):
    """Issue 30, item 8: the page's address follows the view (search, compose, the tab); the copy box
    holds the full URL; reload and Back restore the rows; an uploaded image says it cannot travel."""
    from PIL import Image

    app, _ = served
    labels = app.engine.label_text(app.engine.examples["query-3"][1])
    query_3 = page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected"))
    page.locator('img[src$="query-3.png"] >> visible=true').first.click()
    expect(query_3).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?split=query&id=3&theta=[\d.]+&L=\d+&K=\d+$"))
    expect(link_box(page)).to_have_value(page.url)
    set_number(page, L_LABEL, 9)
    expect(page).to_have_url(re.compile(r"&L=9&"))
    first_tiles = tiles(page, RERANKED).all_inner_texts()
    page.reload()
    expect(
        page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected 9 of"))
    ).to_be_visible()
    expect(tiles(page, RERANKED)).to_have_text(first_tiles)
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"&L=9&"))
    expect(
        page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected (?!9 )"))
    ).to_be_visible()
    page.get_by_role("tab", name="Compose").click()
    expect(page).to_have_url(re.compile(r"\?tab=compose$"))
    page.get_by_role("button", name="Preset: difference").click()
    expect(page).to_have_url(re.compile(r"\?tab=compose&a=query%3A\d+&b=query%3A\d+&op=difference$"))
    expect(link_box(page, "Link to this composition")).to_have_value(page.url)
    page.reload()
    expect(page.get_by_role("tab", name="Compose", selected=True)).to_be_visible()
    expect(page.get_by_text("Target set T = A difference B")).to_be_visible()
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise)
    upload_query(page, str(noise))
    expect(page.get_by_text(re.compile(r"^Query labels unknown"))).to_be_visible()
    expect(page.get_by_text("Your own image cannot travel in a link")).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?theta=[\d.]+&L=\d+&K=\d+$"))  # no split, no id
    page.get_by_role("tab", name="Compose").click()
    block(page, "Slot A").get_by_label("File upload").set_input_files(str(noise))
    expect(page.get_by_text("A slot holds your own image, which cannot travel in a link")).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?tab=compose$"))
    expect(link_box(page, "Link to this composition")).to_have_value("")


def test_each_row_shows_this_query_s_p10_ap100_and_ap(served, page):
    """Issue 30, item 9: each row's P@10, AP@100 (its term of map@100) and AP over its K, and the
    composition's figures against T: the engine's own numbers, from the metric functions."""
    app, _ = served
    engine, defaults = app.engine, app.engine.defaults
    answer = engine.search(engine.examples["query-11"][0], defaults["theta"], defaults["L"], defaults["K"])
    for name, row in (("coarse", answer.coarse), ("reranked", answer.reranked)):
        figures = engine.row_figures(row, answer.query.labels)
        expect(page.locator(f"#{name}-header")).to_contain_text(
            f"P@10 = {figures.precision:.1f} · AP@100 = {figures.ap_at_100:.2f} · AP@1000 = {figures.ap:.2f}"
        )
    page.get_by_role("tab", name="Compose").click()
    page.get_by_role("button", name="Preset: intersection").click()
    operators, ids = engine.presets()["intersection"]
    composed = engine.compose(*engine.query_images[list(ids)], operators[0], k=100)
    figures = engine.row_figures(composed.composed, composed.target, exact=True)
    expect(page.locator("#compose-summary")).to_contain_text(
        f"P@10 = {figures.precision:.1f} · AP@100 = {figures.ap:.2f} (relevant: exactly T)"
    )


def test_every_tile_names_its_gallery_id_and_a_result_becomes_the_next_query(served, page):
    """Issue 30, item 12 (and item 6's global row): both rows caption every tile with its gallery id; a
    result of either row explains itself, and one click searches with it."""
    app, _ = served
    for row in (COARSE, RERANKED):
        assert all(re.match(r"^#\d+ · ", text) for text in tiles(page, row).all_inner_texts())
    why = explain(page, 1, COARSE)
    gallery_id = int(re.search(r"gallery #(\d+)", why.inner_text()).group(1))
    expect(page.locator(".preview")).to_have_count(0)  # no large preview over the page
    expect_in_view(page, why)  # the explanation scrolls into view (it sat below the fold)
    page.get_by_role("button", name="Search with this result as the query").click()
    labels = app.engine.label_text(app.engine.gallery_labels[gallery_id])
    expect(page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected"))).to_be_visible()
    expect(page).to_have_url(re.compile(rf"\?split=gallery&id={gallery_id}&"))
    expect(tiles(page, COARSE).first).to_contain_text(f"#{gallery_id} · ")  # itself, at distance 0


def clipped_captions(page) -> int:
    """How many captions of the compose example tiles are cut (hidden, or taller than their box)."""
    return (
        tiles(page, "Example images")
        .locator(".caption-label")
        .evaluate_all(
            "labels => labels.filter(l => l.scrollHeight > l.clientHeight + 1 || !l.checkVisibility()).length"
        )
    )


def test_the_small_things(served, page):
    """Issue 30, item 6: a click beside the bits says so without "Error" badges; at theta = 1 no empty
    code; an empty intersection says why nothing matches; the compose tiles show their whole captions."""
    from hashdemo.app.pictures import STRIP_TOP

    strip = panel(page, "strip")
    expect_image_loaded(page, strip)
    click_picture(page, strip, 10, STRIP_TOP + 6)  # on the row label "H_g"
    expect(page.locator(".toast-body").filter(has_text="Click a bit of H_g")).to_be_visible()
    assert page.evaluate(SHOWN_BADGE) == []
    set_number(page, THETA_LABEL, 1)
    info = page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))
    expect(page.get_by_text("The attention region is empty at this theta")).to_be_visible()
    expect(info).to_contain_text(
        re.compile(r"Selected \d+ of \d+ local bits; 0 of \d+ overlap the attention region;")
    )
    assert info.locator("code").evaluate_all("codes => codes.filter(c => !c.textContent.trim()).length") == 0
    page.get_by_role("tab", name="Compose").click()
    engine = served[0].engine
    labels = [set(np.flatnonzero(lab)) for _, lab in engine.examples.values()]
    a, b = next((i, j) for i in range(len(labels)) for j in range(len(labels)) if not labels[i] & labels[j])
    fill_slots(page, a, b)
    page.get_by_role("radio", name="intersection", exact=True).first.check()
    expect(page.get_by_text("Target set T = A intersection B")).to_be_visible()
    expect(page.get_by_text(re.compile(r"T is empty .+ no exact match exists"))).to_be_visible()
    assert clipped_captions(page) == 0


def test_a_dithered_colour_ramp_is_called_a_picture_without_items(page, tmp_path):
    """Issue 30, item 7: a linear ramp with the little noise drawing programs add (dithering) had the
    fine detail of an outfit and passed without a note."""
    from PIL import Image

    ramp = np.linspace(0, 255, 64)[None, :, None].repeat(64, axis=0).repeat(3, axis=2)
    noise = np.random.default_rng(0).integers(-2, 3, ramp.shape)
    path = tmp_path / "ramp.png"
    Image.fromarray(np.clip(ramp + noise, 0, 255).astype(np.uint8)).save(path)
    upload_query(page, str(path))
    expect(page.get_by_text(re.compile(r"^Query labels unknown"))).to_be_visible()
    expect(page.get_by_text("This picture is smooth, with no items in it")).to_be_visible()


def test_user_mistakes_leave_no_traceback_in_the_server_log(page, tmp_path, capfd):
    """Issue 30, item 6: an out-of-range value and a bad file on a slot get their sentence, and the server
    (in this process: its output is captured here) logs one line each, no traceback."""
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    set_number(page, L_LABEL, 999)
    expect(page.locator(".toast-body").filter(has_text="must be an integer between 1 and")).to_be_visible()
    fill_slots(page, 2, 5)
    expect(tiles(page, COMPOSED)).to_have_count(20)
    block(page, "Slot A").get_by_label("File upload").set_input_files(str(text))
    expect(
        page.locator(".toast-body").filter(has_text="The image in slot A: This file is not")
    ).to_be_visible()
    expect(tiles(page, COMPOSED)).to_have_count(20)
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out, logged.err[-3000:]


def test_pin_a_view_compare_it_with_other_settings_and_draw_a_curve_on_demand(served, page):
    """Issue 30, item 11: pin the view, change L, compare: both views' rows and figures side by side; the
    curve against L and theta is drawn on a click; the next search clears both (nothing stale)."""
    app, _ = served
    engine, defaults = app.engine, app.engine.defaults
    page.get_by_text("Pin and compare").click()
    page.get_by_role("button", name="Pin this view").click()
    pinned = f"query-11, theta = {defaults['theta']:g}, L = {defaults['L']}, K = {defaults['K']}"
    expect(page.locator("#pin-status")).to_contain_text(f"Pinned: {pinned}")
    set_number(page, L_LABEL, 4)
    expect(page.get_by_text(re.compile(r"Selected 4 of \d+ local bits"))).to_be_visible()
    # issue 37, defect 10: the pin's line stays after a new L (the pin still holds)
    expect(page.locator("#pin-status")).to_contain_text(f"Pinned: {pinned}")
    page.get_by_role("button", name="Compare with the pinned view").click()
    table = page.locator("#pin-text table")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table).to_contain_text(pinned)
    answer = engine.search(engine.examples["query-11"][0], defaults["theta"], 4, defaults["K"])
    figures = engine.row_figures(answer.reranked, answer.query.labels)
    now = table.locator("tr", has_text=", L = 4,").filter(has_text="re-ranked")
    expect(now).to_contain_text(f"AP@100 = {figures.ap_at_100:.2f} · AP@1000 = {figures.ap:.2f}")
    expect_image_loaded(page, panel(page, "pin"))
    page.get_by_role("button", name="Curve of P@10 and AP against L and theta").click()
    expect_image_loaded(page, panel(page, "curve"))
    set_number(page, L_LABEL, 5)
    expect(panel(page, "curve")).to_have_count(0)
    expect(panel(page, "pin")).to_have_count(0)
    expect(table).to_have_count(0)


def test_the_query_split_lists_the_queries_the_re_rank_helps_and_hurts_and_a_row_opens_one(served, page):
    """Issue 37, item 3: every query's AP@100 on the global code and re-ranked at the page's settings, the
    most helped listed (largest gain first, as the engine computes it); a click on a row searches it."""
    app, _ = served
    page.get_by_text("The query split: where the CAM bits help or hurt").click()
    page.get_by_role("button", name="Rank the query split at these settings").click()
    expect(page.locator("#split-text")).to_contain_text(re.compile(r"Over all [\d,]+ queries"))
    first = page.locator("#split-helped [data-testid='cell-0-0']")
    expect(first).to_have_text(re.compile(r"^\s*\d+\s*$"))
    defaults = app.engine.defaults
    gains = app.engine.query_split.gains(defaults["theta"], defaults["L"], defaults["K"], "label")
    best = int(gains.ids[np.lexsort((gains.ids, -gains.gain))[0]])
    expect(first).to_have_text(re.compile(rf"^\s*{best}\s*$"))
    gain = page.locator("#split-helped [data-testid='cell-0-4']").inner_text()
    assert float(gain) == pytest.approx(gains.gain.max(), abs=1e-3)
    page.locator("#split-helped [data-testid='cell-0-1']").click()
    expect(page).to_have_url(re.compile(rf"\?split=query&id={best}&"))
    labels = app.engine.label_text(app.engine.query_labels[best])
    expect(page.get_by_text(re.compile(rf"^Query labels: {re.escape(labels)}\. Selected"))).to_be_visible()


@pytest.mark.parametrize("viewport", [VIEWPORT, PHONE], ids=["desktop", "phone"])
def test_the_relevance_rule_rescores_the_rows_and_rides_in_the_link(served, browser, viewport):
    """Issue 37, item 1: one control says what relevant means; the headers and frames follow it, the rows
    stay, the address bar carries it and a reload restores it. On a phone the control fits the width."""
    _, url = served
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(url + "?split=query&id=3&theta=0.4&L=16&K=200")
    # the linked view first: a click while the page loads is undone by the load's own answer
    expect(page.get_by_text(re.compile(r"^Query labels: .+\. Selected"))).to_be_visible()
    expect(tiles(page, RERANKED)).to_have_count(SHOWN_RESULTS)
    header = page.locator("#reranked-header")
    expect(header).to_contain_text("relevant = shares a label")
    shown = tiles(page, RERANKED).all_inner_texts()
    control = page.locator("#relevance")
    control.get_by_text("exact label set").click()
    expect(header).to_contain_text("relevant = exact label set")
    expect(page.locator("#coarse-header")).to_contain_text("relevant = exact label set")
    expect(page).to_have_url(re.compile(r"&rel=exact$"))
    assert tiles(page, RERANKED).all_inner_texts() == shown
    box = control.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    page.reload()
    expect(control.get_by_label("exact label set")).to_be_checked()
    expect(header).to_contain_text("relevant = exact label set")
    control.get_by_text("holds the boxed item").click()
    expect(header).to_contain_text("P@10 and AP unknown: box an item first")
    context.close()
