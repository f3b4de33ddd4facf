"""The Gradio interface over one `Engine`: the page, one module per tab.

Tabs: hashdemo.app.search_tab, compose_tab, benchmarks_tab; the How it works text is how_it_works.md.
Handlers validate, make one engine call and format (hashdemo.app.presenter); every user mistake becomes
a message in one place (hashdemo.app.widgets.user_errors). Outputs are addressed by name, never by position.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from hashdemo.app.benchmarks_tab import benchmarks_tab
from hashdemo.app.compose_tab import compose_tab
from hashdemo.app.links import TABS, linked_tab, sentence
from hashdemo.app.picture_files import PictureFiles
from hashdemo.app.presenter import Presenter
from hashdemo.app.search_tab import search_tab
from hashdemo.app.widgets import refuse_drop, write_examples
from hashdemo.service.engine import Engine

HERE = Path(__file__).resolve().parent
CSS = (HERE / "style.css").read_text()
# the page scripts, run once on load: drag and drop onto the slots, and the address bar as the view's link
SCRIPTS = ("dragdrop.js", "address.js")
JS = "() => {\n" + "".join(f"({(HERE / name).read_text().strip()})();\n" for name in SCRIPTS) + "}"
HOW_IT_WORKS = (HERE / "how_it_works.md").read_text()
MAX_UPLOAD = "10mb"


def build_demo(engine: Engine, examples_dir: Path, outputs_dir: Path) -> gr.Blocks:
    example_paths = write_examples(engine, examples_dir)
    files = PictureFiles(outputs_dir)
    present = Presenter(engine, files)
    with gr.Blocks(title="hashdemo: deep hashing you can see") as demo:
        gr.Markdown(
            "# hashdemo\nHierarchical hashing with CAM attention bit selection, and deep code operation "
            f"hashing (DCOH), trained on {'Fashion-MNIST ' * (engine.dataset == 'outfits')}"
            f"{engine.data_description}. "
            "Every number comes from the shipped checkpoints."
        )
        refused = gr.Textbox(elem_id="refused-drop", elem_classes="hidden-channel", show_label=False)
        refused.change(refuse_drop, refused, None, api_name=False, show_progress="hidden")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Attention & search", id="search") as search:
                search_tab(demo, engine, present, example_paths)
            with gr.Tab("Compose", id="compose") as compose:
                roots = [examples_dir, outputs_dir, Path(gr.utils.get_upload_folder())]
                compose_tab(demo, present, example_paths, roots)
            with gr.Tab("Benchmarks", id="benchmarks") as benchmarks:
                benchmarks_tab(engine.hier.metrics, engine.dcoh.metrics, files, engine.dataset)
            with gr.Tab("How it works", id="how") as how:
                gr.Markdown(
                    HOW_IT_WORKS,
                    latex_delimiters=[
                        {"left": "$$", "right": "$$", "display": True},
                        {"left": "$", "right": "$", "display": False},
                    ],
                )

        def open_tab(request: gr.Request):
            """The tab a link names (a composition opens Compose); a bad name is dropped with a sentence."""
            tab, problem = linked_tab(dict(request.query_params) if request else {})
            if problem:
                gr.Warning(sentence(problem))
            return gr.Tabs(selected=tab) if tab else gr.skip()

        demo.load(open_tab, None, tabs, api_name=False)
        for name, tab in zip(TABS, (search, compose, benchmarks, how), strict=True):
            tab.select(None, js=f"() => window.hashdemoTab?.('{name}')")  # the address names the open tab
    return demo
