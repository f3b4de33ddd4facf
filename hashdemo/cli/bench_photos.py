"""`bench photos`: photographs' mechanics, speed and memory, with random weights (no photographs and no
pretrained weights reach this machine, so retrieval quality on photographs is not measured here).

It writes a seeded folder of synthetic photo-sized JPEGs (smooth backgrounds, 1-3 coloured shapes, the
shapes are the labels), then measures, each in the same run:
- the import at `--size` px: images/s and the child process's peak memory, against the pixels' bytes
  (what the import held twice over before it streamed); a second import of the same files (a no-op);
- the frozen feature pass of each torchvision backbone in images/s, against resnet18's;
- `train hier --backbone resnet18` twice: with the feature pass, then on the cached features;
- the served app's /search latency (the query's forward pass included) with resnet18 and
  resnet50 models trained on the first `--search-photos` photos, against the outfits' CNN's handlers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hashdemo.evaluation.markdown import markdown_table
from hashdemo.storage.files import write_atomic
from hashdemo.timing import median_ms

SHAPES = ("circle", "square", "triangle", "ring", "bar")
PHOTO_SIZE = (500, 375)  # a typical small photo (width, height)
FEATURE_BACKBONES = ("resnet18", "resnet50", "vgg16")
LOG = Path("runs/bench-photos.log")  # the children's output


def draw_photo(rng: np.random.Generator, shapes: list[str]) -> np.ndarray:
    """A photo-sized picture: a smooth colour background and each shape in its own colour and place."""
    import cv2

    width, height = PHOTO_SIZE
    noise = rng.integers(0, 200, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    for k, shape in enumerate(shapes):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int((k + 0.5) * width / len(shapes)), int(rng.integers(height // 3, 2 * height // 3))
        r = int(rng.integers(30, 70))
        if shape == "circle":
            cv2.circle(image, (cx, cy), r, colour, -1)
        elif shape == "ring":
            cv2.circle(image, (cx, cy), r, colour, 12)
        elif shape == "square":
            cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
        elif shape == "triangle":
            cv2.fillPoly(
                image, [np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)], colour
            )
        else:
            cv2.rectangle(image, (cx - r, cy - r // 4), (cx + r, cy + r // 4), colour, -1)
    return image


def write_photos(folder: Path, n: int, seed: int = 0) -> Path:
    """n JPEG photos in `folder/images/` and `folder/labels.csv` (reused when already written)."""
    import cv2

    labels_csv = folder / f"labels-{n}.csv"
    if labels_csv.is_file():
        return labels_csv
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = [("path", "labels")]
    for i in range(n):
        shapes = list(rng.choice(SHAPES, int(rng.integers(1, 4)), replace=False))
        name = f"images/photo-{i:05d}.jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(draw_photo(rng, shapes), cv2.COLOR_RGB2BGR))
        rows.append((name, "|".join(shapes)))
    with open(labels_csv, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return labels_csv


# Runs `python -m hashdemo ARGS` and writes the process's peak resident memory (VmHWM, kB) to a file at
# exit. VmHWM starts afresh at exec; getrusage's ru_maxrss of a child would include the pages of this
# (large) process it was forked from.
PEAK_LAUNCHER = """
import atexit, runpy, sys
out = sys.argv[1]
def peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(kb)
atexit.register(peak)
sys.argv = ["hashdemo", *sys.argv[2:]]
runpy.run_module("hashdemo", run_name="__main__", alter_sys=True)
"""


def run_child(args: list[str], env: dict[str, str], log: Path = LOG) -> tuple[float, float]:
    """`python -m hashdemo ARGS` in its own process, its output appended to `log`: (seconds, its peak
    resident memory in MB)."""
    peak_file = Path(log).with_suffix(".peak")
    started = time.perf_counter()
    with open(log, "a") as out:
        done = subprocess.run(
            [sys.executable, "-c", PEAK_LAUNCHER, str(peak_file), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"python -m hashdemo {' '.join(args)} exited with {done.returncode} (see {log})")
    return seconds, int(peak_file.read_text()) / 1024


def feature_rates(size: int, n: int) -> list[list]:
    """Each torchvision backbone's frozen feature pass (random weights, batches of 32) in images/s."""
    import torch

    from hashdemo.model.backbones import BACKBONES, build_backbone
    from hashdemo.model.features import BATCH
    from hashdemo.model.networks import preprocess

    images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    rates = {}
    for name in FEATURE_BACKBONES:
        backbone = build_backbone(name, BACKBONES[name].channels).eval()
        with torch.no_grad():
            backbone(preprocess(images[:BATCH], name))  # warm-up
            started = time.perf_counter()
            for first in range(0, n, BATCH):
                backbone(preprocess(images[first : first + BATCH], name)).mean(dim=(2, 3))
        rates[name] = n / (time.perf_counter() - started)
    return [[name, round(rate, 1), round(rates["resnet18"] / rate, 2)] for name, rate in rates.items()]


def measure_import(labels_csv: Path, n: int, size: int, cache: Path) -> dict:
    shutil.rmtree(cache, ignore_errors=True)  # the import is measured from nothing
    args = ["data", "import", "photos", "--csv", str(labels_csv), "--size", str(size)]
    seconds, peak = run_child(args, child_env(cache))
    again, _ = run_child(args, child_env(cache))
    pixels_mb = n * size * size * 3 / 2**20
    return {
        "seconds": round(seconds, 1),
        "images_per_s": round(n / seconds, 1),
        "peak_mb": round(peak),
        "pixels_mb": round(pixels_mb),
        "peak_over_pixels": round(peak / pixels_mb, 3),
        "again_seconds": round(again, 1),
    }


def measure_heads(labels_csv: Path, size: int, cache: Path, workdir: Path) -> dict:
    """`train hier --backbone resnet18` with its feature pass, then again on the cached features."""
    run_child(["data", "import", "photos", "--csv", str(labels_csv), "--size", str(size)], child_env(cache))
    shutil.rmtree(cache / "datasets" / "photos" / "features", ignore_errors=True)
    train = ["train", "hier", "--dataset", "photos", "--backbone", "resnet18", "--weights", "none"]
    first, _ = run_child([*train, "--out", str(workdir / "hier-first")], child_env(cache))
    cached, _ = run_child([*train, "--out", str(workdir / "hier-cached")], child_env(cache))
    return {"with_feature_pass_s": round(first, 1), "on_cached_features_s": round(cached, 1)}


def child_env(cache: Path) -> dict[str, str]:
    return {"HASHDEMO_CACHE_DIR": str(cache), "HASHDEMO_OFFLINE": "1"}


PARTS = ("import", "features", "heads", "search")


def run_photos_bench(n: int, size: int, workdir: Path, search_photos: int, repeats: int, parts=PARTS) -> dict:
    """The parts asked for, each with the machine's load average when it started (other work skews rates)."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    labels_csv = write_photos(workdir / "photos", n)
    cache = workdir / f"cache-{n}-{size}"
    measures = {
        "import": lambda: measure_import(labels_csv, n, size, cache),
        "features": lambda: feature_rates(size, 128),
        "heads": lambda: measure_heads(labels_csv, size, cache, workdir),
        "search": lambda: search_latency(labels_csv, size, workdir, search_photos, repeats),
    }
    result = {"bench": "photos", "photos": n, "size": size, "cpus": os.cpu_count(), "load_average": {}}
    for part in parts:
        result["load_average"][part] = round(os.getloadavg()[0], 2)
        result[part] = measures[part]()
    return result


SEARCH_PARAMS = (0.4, 8, 100)  # theta, L, K: the same for every row (K fits the smallest gallery)


def search_latency(labels_csv: Path, size: int, workdir: Path, n: int, repeats: int) -> list[list]:
    """Per model set, the median ms of one search: in the engine (the query's forward pass, attention
    and two-level search) and through the served app's /search with gradio_client (upload, handler,
    pictures; the pictures not fetched). hier and dcoh are trained on the first n photos per backbone
    for one epoch: latency does not depend on how well the heads are trained. The peer is the app on
    the outfits with its CNN."""
    subset = workdir / "photos" / f"labels-first-{n}.csv"
    subset.write_text("".join(labels_csv.read_text().splitlines(keepends=True)[: n + 1]))
    rows = [["cnn7 (outfits, 64 px)", *search_ms({}, None, workdir, repeats)]]
    for backbone in ("resnet18", "resnet50"):
        cache = workdir / f"cache-search-{backbone}-{size}"
        shutil.rmtree(cache, ignore_errors=True)
        run_child(["data", "import", "photos", "--csv", str(subset), "--size", str(size)], child_env(cache))
        for model in ("hier", "dcoh"):
            train = ["train", model, "--dataset", "photos", "--backbone", backbone, "--weights", "none"]
            run_child([*train, "--epochs", "1"], child_env(cache))
        env = {**child_env(cache), "HASHDEMO_DATASET": "photos"}
        rows.append([f"{backbone} ({size} px)", *search_ms(env, cache, workdir, repeats)])
    return [[*row, round(row[2] / rows[0][2], 1)] for row in rows]


def search_ms(env: dict[str, str], cache: Path | None, workdir: Path, repeats: int) -> tuple[float, float]:
    """(engine ms, served /search ms), medians over the dataset's first query images, each searched once."""
    from gradio_client import Client, handle_file
    from PIL import Image

    from hashdemo.harness.served_app import ServedApp
    from hashdemo.service.engine import Engine

    engine = Engine.load(cache_dir=cache, dataset=env.get("HASHDEMO_DATASET", "outfits"))
    count = repeats + 1  # distinct query images, one a call (the warm-up's too): nothing answers from a cache
    images = [np.asarray(engine.query_images[i]) for i in range(count)]
    paths = [workdir / f"query-{engine.dataset}-{engine.image_size}-{i}.png" for i in range(count)]
    for image, path in zip(images, paths, strict=True):
        Image.fromarray(image).save(path)
    calls = iter(range(count))
    in_engine = median_ms(lambda: engine.search(images[next(calls)], *SEARCH_PARAMS), repeats)
    with ServedApp(env, log=workdir / f"app-{paths[0].stem}.log") as app:
        client = Client(app.url, verbose=False, download_files=False)  # as a page, which fetches lazily
        calls = iter(range(count))
        served = median_ms(
            lambda: client.predict(handle_file(str(paths[next(calls)])), *SEARCH_PARAMS, api_name="/search"),
            repeats,
        )
    return round(in_engine, 1), round(served, 1)


TABLES = {
    "import": (["import", "value"], lambda part: [[k, v] for k, v in part.items()]),
    "features": (["backbone", "feature pass img/s", "resnet18's rate / this"], lambda part: part),
    "heads": (["train hier --backbone resnet18", "seconds"], lambda part: [[k, v] for k, v in part.items()]),
    "search": (["models", "engine ms", "/search ms", "/search / cnn7's"], lambda part: part),
}


def cmd_photos(args: argparse.Namespace) -> None:
    parts = args.parts or PARTS
    result = run_photos_bench(args.photos, args.size, args.workdir, args.search_photos, args.repeats, parts)
    print(
        f"{result['photos']} synthetic {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEGs at {result['size']} px, "
        f"{result['cpus']} CPUs, random weights; load average at each part's start {result['load_average']}"
    )
    for part in parts:
        header, rows = TABLES[part]
        print()
        print(markdown_table(header, rows(result[part]), digits=None))
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")


def add_parser(sub) -> None:
    parser = sub.add_parser("photos", help="photographs: import memory, feature passes, heads, latency")
    parser.add_argument(
        "--photos", type=int, default=20_000, help="synthetic photos to import (default 20000)"
    )
    parser.add_argument("--size", type=int, default=224, help="import and model side in pixels (default 224)")
    parser.add_argument("--search-photos", type=int, default=1000, help="photos the latency models train on")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-photos"))
    parser.add_argument("--parts", nargs="+", choices=PARTS, help="measure only these (default: all)")
    parser.add_argument("--json", type=str, default=None)
    parser.set_defaults(func=cmd_photos)
