"""hashdemo: a Gradio demo of hierarchical CAM hashing and deep code operation hashing.

`python app.py` serves http://127.0.0.1:7860; HASHDEMO_HOST and HASHDEMO_PORT change that.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hashdemo.app.engine import Engine  # noqa: E402
from hashdemo.app.ui import CSS, JS, MAX_UPLOAD, build_demo  # noqa: E402
from hashdemo.checkpoints import CheckpointError  # noqa: E402
from hashdemo.data import DatasetMissingError, default_cache_dir  # noqa: E402
from hashdemo.retrieval.index import GalleryUnavailable  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(message)s")
try:
    engine = Engine.load()
except (CheckpointError, DatasetMissingError, GalleryUnavailable) as error:
    sys.exit(f"hashdemo cannot start: {error}")
EXAMPLES_DIR = default_cache_dir() / "examples"
OUTPUTS_DIR = default_cache_dir() / "outputs"
demo = build_demo(engine, EXAMPLES_DIR, OUTPUTS_DIR)


def launch(**overrides):
    """Serve the demo: loopback unless HASHDEMO_HOST says otherwise, no share link, bounded uploads.

    Two requests run at once: each handler is CPU-bound and this machine class has two cores.
    """
    settings = {
        "server_name": os.environ.get("HASHDEMO_HOST", "127.0.0.1"),
        "server_port": int(os.environ.get("HASHDEMO_PORT", "7860")),
        "share": False,
        "max_file_size": MAX_UPLOAD,
        "allowed_paths": [str(EXAMPLES_DIR), str(OUTPUTS_DIR)],
        "css": CSS,
        "js": JS,
    }
    return demo.queue(default_concurrency_limit=2).launch(**{**settings, **overrides})


if __name__ == "__main__":
    launch()
