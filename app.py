"""hashdemo: a Gradio demo of hierarchical CAM hashing and deep code operation hashing.

`python app.py` serves http://127.0.0.1:7860; HASHDEMO_HOST and HASHDEMO_PORT change that, and so do
Gradio's own GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (what Hugging Face Spaces and Docker set).
HASHDEMO_CACHE_MAX_MB (default 500) caps the disk its pictures and Gradio's uploads may use, and
HASHDEMO_CACHE_GRACE_S (default 60) is how long a file named by a response is kept whatever the cap;
HASHDEMO_MILVUS_URI puts the gallery in Milvus (docs/scale-out.md). `python app.py --dataset NAME` (or
HASHDEMO_DATASET=NAME) serves an imported folder instead of the outfits (docs/your-own-images.md).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
if __name__ == "__main__" and "--dataset" in sys.argv[1:]:  # read before the engine loads, below
    position = sys.argv.index("--dataset")
    if position + 1 >= len(sys.argv):
        sys.exit("hashdemo cannot start: --dataset needs a name (python app.py --dataset NAME)")
    os.environ["HASHDEMO_DATASET"] = sys.argv[position + 1]
DATASET = os.environ.get("HASHDEMO_DATASET") or "outfits"


# glibc's malloc for a long-running server (hashdemo/runtime.py), before any thread starts
from hashdemo.runtime import configure_malloc  # noqa: E402

configure_malloc()
from hashdemo.data.fashion_mnist import DatasetMissingError  # noqa: E402
from hashdemo.storage.locations import default_cache_dir  # noqa: E402

# Gradio's upload and output cache lives beside the app's pictures, so one disk budget covers both.
os.environ.setdefault("GRADIO_TEMP_DIR", str(default_cache_dir() / "gradio"))

from hashdemo.app.serving import listen_settings  # noqa: E402
from hashdemo.app.ui import CSS, JS, MAX_UPLOAD, build_demo  # noqa: E402
from hashdemo.app.widgets import examples_dir  # noqa: E402
from hashdemo.model.checkpoints import CheckpointError  # noqa: E402
from hashdemo.retrieval.index import GalleryUnavailable  # noqa: E402
from hashdemo.service.engine import Engine  # noqa: E402
from hashdemo.storage.disk import budget_from_env  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(message)s")
EXAMPLES_DIR = examples_dir(DATASET)
OUTPUTS_DIR = default_cache_dir() / "outputs"
try:
    disk_budget = budget_from_env([OUTPUTS_DIR, Path(os.environ["GRADIO_TEMP_DIR"])], named_by=OUTPUTS_DIR)
    engine = Engine.load(dataset=DATASET)
except (CheckpointError, DatasetMissingError, GalleryUnavailable, ValueError) as error:
    sys.exit(f"hashdemo cannot start: {error}")
demo = build_demo(engine, EXAMPLES_DIR, OUTPUTS_DIR)
# Load shedding: at most this many requests wait; the next caller is told at once that the queue is
# full and to try again (HTTP 503), instead of waiting without bound. With two workers, the last one in
# the queue waits a few seconds (docs/operating.md has the load test's waits).
MAX_QUEUE = 24


def launch(**overrides):
    """Serve the demo: loopback unless HASHDEMO_HOST says otherwise, no share link, bounded uploads,
    a bounded queue and a bounded disk.

    Two requests run at once: each handler is CPU-bound and this machine class has two cores.
    """
    try:
        listen = listen_settings()
    except ValueError as error:
        sys.exit(f"hashdemo cannot start: {error}")
    settings = {
        **listen,
        "share": False,
        "max_file_size": MAX_UPLOAD,
        "allowed_paths": [str(EXAMPLES_DIR), str(OUTPUTS_DIR)],
        "css": CSS,
        "js": JS,
    }
    disk_budget.run_every()
    return demo.queue(default_concurrency_limit=2, max_size=MAX_QUEUE).launch(**{**settings, **overrides})


if __name__ == "__main__":
    launch()
