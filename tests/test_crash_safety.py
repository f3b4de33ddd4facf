"""kill -9 while each cache is written: the next start removes the partial write, rebuilds what is
missing, and gives the same data and the same answers.

The kill is a real SIGKILL, sent by the process to itself at the worst moment (a complete temporary
file, not yet renamed) through the HASHDEMO_KILL_BEFORE_RENAME fault-injection point of
hashdemo.storage.files.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from hashdemo.app.presenter import SEARCH_OUTPUTS
from hashdemo.data.dataset import open_dataset
from hashdemo.data.outfits import OutfitRecipe, cache_path, load_outfits
from hashdemo.harness.served_app import ServedApp, link_default_caches, plain_answer
from hashdemo.model.checkpoints import MANIFEST
from hashdemo.retrieval.gallery_codes import large_gallery_codes
from hashdemo.storage.locations import CHECKPOINT_DIR, default_cache_dir

pytestmark = [pytest.mark.slow, pytest.mark.soak]

ROOT = Path(__file__).resolve().parents[1]
PICTURE = "?" * 32 + ".png"  # the app's content-addressed pictures, not examples or figures


def _env(cache: Path, kill_at: str | None = None, **extra) -> dict:
    env = {**os.environ, "HASHDEMO_CACHE_DIR": str(cache), "GRADIO_ANALYTICS_ENABLED": "False", **extra}
    env.pop("GRADIO_TEMP_DIR", None)
    if kill_at:
        env["HASHDEMO_KILL_BEFORE_RENAME"] = kill_at
    else:
        env.pop("HASHDEMO_KILL_BEFORE_RENAME", None)
    return env


def _run(args: list[str], cache: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(cache, kill_at),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _killed_mid_write(args: list[str], cache: Path, pattern: str) -> None:
    crashed = _run(args, cache, kill_at=pattern)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert not [p for p in cache.glob(pattern)], "the final file must not exist after the kill"
    assert list(cache.glob(f".{pattern}.*.tmp")), "the kill should leave a partial write behind"


def _killed_then_rebuilt(args: list[str], cache: Path, pattern: str) -> Path:
    """Kill `args` mid-write of the file `pattern`, run it again: the one file it builds, the partial
    write removed."""
    _killed_mid_write(args, cache, pattern)
    rerun = _run(args, cache)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not list(cache.glob(".*.tmp")), "the partial write must be removed"
    (built,) = cache.glob(pattern)
    return built


def _same_arrays(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.fixture(scope="module", autouse=True)
def reference_caches(engine):
    """The dataset and the 10k gallery's codes in the default cache, built by the same code without a
    crash: the session's engine loaded them (already there when other tests ran first)."""


# The dataset test's recipe: the write, the kill and the rebuild are the same code at any size, and
# this one builds in ~0.5 s where the app's takes ~10 s (twice here, in the killed run and the rerun).
SMALL = {"train_size": 300, "val_size": 100, "query_size": 50, "gallery_size": 300}


def test_dataset_killed_mid_write_is_rebuilt_identically(tmp_path):
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    build = [
        "-c",
        "from hashdemo.data.outfits import OutfitRecipe, load_outfits\n"
        f"load_outfits(OutfitRecipe(**{SMALL!r}))",
    ]
    built = _killed_then_rebuilt(build, crashed, "outfits-*.npz")
    load_outfits(OutfitRecipe(**SMALL), cache_dir=clean)
    reference = cache_path(OutfitRecipe(**SMALL), clean)
    assert built.name == reference.name
    _same_arrays(built, reference)


def test_gallery_codes_killed_mid_write_are_rebuilt_identically(tmp_path):
    cache, models = tmp_path / "cache", tmp_path / "models"
    link_default_caches(cache, ("outfits-*.npz",))  # the dataset only: this test builds the codes
    # The engine's two models, the same files: the codes file gets the name it has in the default
    # cache, and the field's peer models (each ~5 s to encode, twice) are not there to be encoded.
    models.mkdir()
    for name in ("hier", "dcoh", MANIFEST):
        (models / name).symlink_to(CHECKPOINT_DIR / name)
    load = [
        "-c",
        "from pathlib import Path\nfrom hashdemo.service.engine import Engine\n"
        f"Engine.load(checkpoints=Path({str(models)!r}))",
    ]
    built = _killed_then_rebuilt(load, cache, "gallery-codes-*.npz")
    _same_arrays(built, default_cache_dir() / built.name)


def test_large_gallery_killed_mid_write_is_rebuilt_identically(tmp_path):
    command = ["-m", "hashdemo", "gallery-codes", "--size", "2000", "--models", "hier"]
    built = _killed_then_rebuilt(command, tmp_path / "crashed", "large-gallery-*.npz")
    large_gallery_codes(open_dataset(cache_dir=tmp_path / "clean"), ("hier",), 2000)
    _same_arrays(built, tmp_path / "clean" / built.name)


def _search(url: str, image: str) -> dict:
    out = Client(url, verbose=False).predict(handle_file(image), 0.4, 32, 1000, api_name="/search")
    return {name: plain_answer(value) for name, value in zip(SEARCH_OUTPUTS, out, strict=True)}


def test_server_killed_while_writing_pictures_restarts_with_the_same_answers(served, tmp_path):
    app, url = served
    image = sorted(str(p) for p in app.EXAMPLES_DIR.glob("query-*.png"))[0]
    cache = tmp_path / "cache"
    link_default_caches(cache)
    crashing = ServedApp({"HASHDEMO_CACHE_DIR": str(cache), "HASHDEMO_KILL_BEFORE_RENAME": PICTURE})
    with crashing:
        with pytest.raises(Exception):  # noqa: B017 - the server dies under this request
            _search(crashing.url, image)
        assert crashing.proc.wait(timeout=60) == -signal.SIGKILL
    assert list((cache / "outputs").glob(".*.tmp")), "the kill should leave a partial picture behind"
    with ServedApp({"HASHDEMO_CACHE_DIR": str(cache), "HASHDEMO_KILL_BEFORE_RENAME": None}) as restarted:
        assert _search(restarted.url, image) == _search(url, image)
    assert not list((cache / "outputs").glob(".*.tmp"))
    for picture in (cache / "outputs").glob("*.png"):
        Image.open(picture).load()  # every picture on disk is complete
