"""The app in a real browser: Debian's chromium driven by Playwright, against the real app on a loopback port.

Selection is by role, label and visible text. Gradio's Image/Gallery labels are not tied to their content
(`<label data-testid="block-label">` without `for`), so `block()` scopes a component by its visible label.
Waits are on conditions only. `HASHDEMO_SCREENSHOTS=1` also rewrites the four screenshots in assets/.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from hashdemo.app.ui import SHOWN_MAPS, SHOWN_RESULTS
from hashdemo.data import CLASS_NAMES

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
    tiles(page, RERANKED).first.click()
    why = page.get_by_text(re.compile(r"^Result 1 \(gallery #\d+, .+\) agrees with the query on"))
    expect(why).to_be_visible()
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
    click_picture(page, cam, 20, 20)
    expect(page.get_by_text("now click the opposite corner")).to_be_visible()
    click_picture(page, cam, 230, 230)
    expect(page.get_by_text("Your box replaces the attention region")).to_be_visible()
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


def test_compose_each_operator_from_example_tiles(page):
    fill_slots(page, 2, 5)
    for operator in ("union", "intersection", "difference"):
        compose(page, operator)
        expect_captions_name_classes(tiles(page, COMPOSED), 20)


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


def test_a_non_image_upload_is_explained(page, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    upload_query(page, str(text))
    toast = page.get_by_role("status").filter(has_text="not an image")
    failed = page.locator("#cam-panel").get_by_text("Error", exact=True)
    expect(toast.or_(failed).first).to_be_visible()  # the event has finished
    expect(toast).to_be_visible(timeout=3_000)


def test_the_app_keeps_working_after_a_non_image_upload(served, page, tmp_path):
    app, _ = served
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    upload_query(page, str(text))
    expect(page.locator("#cam-panel").get_by_text("Error", exact=True)).to_be_visible()
    search(page, _example(app, 3))
    expect_captions_name_classes(tiles(page, RERANKED), SHOWN_RESULTS)
    expect(page.locator("#cam-panel").get_by_text("Error", exact=True)).to_be_hidden()


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
    page.get_by_label("Show the bitwise baseline").check()
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
