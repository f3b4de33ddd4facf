"""hashdemo: a Gradio demo of hierarchical CAM hashing and deep code operation hashing.

`python app.py` serves http://127.0.0.1:7860; HASHDEMO_HOST and HASHDEMO_PORT change that.
HASHDEMO_CACHE_MAX_MB (default 500) caps the disk its pictures and Gradio's uploads may use;
HASHDEMO_MILVUS_URI puts the gallery in Milvus (README, "Scale-out").
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hashdemo.data import DatasetMissingError, default_cache_dir  # noqa: E402

# Gradio's upload and output cache lives beside the app's pictures, so one disk budget covers both.
os.environ.setdefault("GRADIO_TEMP_DIR", str(default_cache_dir() / "gradio"))

from hashdemo.app.disk import DiskBudget, max_bytes_from_env  # noqa: E402
from hashdemo.app.engine import Engine  # noqa: E402
from hashdemo.app.ui import CSS, JS, MAX_UPLOAD, build_demo  # noqa: E402
from hashdemo.checkpoints import CheckpointError  # noqa: E402
from hashdemo.retrieval.index import GalleryUnavailable  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(message)s")
try:
    disk_budget_bytes = max_bytes_from_env()
    engine = Engine.load()
except (CheckpointError, DatasetMissingError, GalleryUnavailable, ValueError) as error:
    sys.exit(f"hashdemo cannot start: {error}")
EXAMPLES_DIR = default_cache_dir() / "examples"
OUTPUTS_DIR = default_cache_dir() / "outputs"
UPLOADS_DIR = os.environ["GRADIO_TEMP_DIR"]
demo = build_demo(engine, EXAMPLES_DIR, OUTPUTS_DIR)
disk_budget = DiskBudget([OUTPUTS_DIR, UPLOADS_DIR], disk_budget_bytes, named_by=OUTPUTS_DIR)
# Load shedding: at most this many requests wait; the next caller is told at once that the queue is
# full and to try again (HTTP 503), instead of waiting without bound. With two workers and ~0.1-0.5 s
# a request, the last one in the queue waits about 5 s.
MAX_QUEUE = 24
PRUNE_EVERY_S = 5.0


def launch(**overrides):
    """Serve the demo: loopback unless HASHDEMO_HOST says otherwise, no share link, bounded uploads,
    a bounded queue and a bounded disk.

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
    disk_budget.run_every(PRUNE_EVERY_S)
    return demo.queue(default_concurrency_limit=2, max_size=MAX_QUEUE).launch(**{**settings, **overrides})


if __name__ == "__main__":
    launch()
