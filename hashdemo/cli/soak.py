"""`python -m hashdemo bench soak`: thousands of distinct uploads against `python app.py` in its own
process, with the disk budget tight enough to be exercised.

Uploads are seeded: outfits drawn by the dataset's own renderer from large-gallery ids no evaluation
uses, and uniform noise. Calls alternate /search (one upload) and /compose (two), from several
clients that also download every picture a response names (so a picture pruned while its response
is delivered shows as an error). Every second the disk use of each cache folder and the server's RSS
are sampled. At the end a fresh server replays the first calls, whose answers must be equal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from hashdemo.evaluation.markdown import markdown_table
from hashdemo.storage.files import write_atomic

FIRST_OUTFIT_ID = 5_000_000  # far past the large gallery's 100k (and its 1M scale rows)


def make_uploads(folder: Path, n: int, seed: int) -> list[str]:
    """n distinct PNG files: seeded outfits (even) and seeded noise (odd), 64x64 RGB."""
    from hashdemo.data.outfits import OutfitRecipe, render_large_gallery

    rng = np.random.default_rng(seed)
    outfits = render_large_gallery(
        np.arange(FIRST_OUTFIT_ID + seed * n, FIRST_OUTFIT_ID + seed * n + n // 2 + 1), OutfitRecipe()
    ).images
    paths = []
    for i in range(n):
        image = outfits[i // 2] if i % 2 == 0 else rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        path = folder / f"upload-{seed}-{i:05d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def folder_mb(path: Path) -> float:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total / 2**20


def run_soak(
    queries: int = 2000,
    cap_mb: float = 200,
    grace_s: float = 30,
    clients: int = 4,
    seed: int = 0,
    sample: int = 10,
    work: Path | None = None,
) -> dict:
    from hashdemo.harness.served_app import ServedApp, link_default_caches

    work = Path(work or tempfile.mkdtemp(prefix="hashdemo-soak-"))
    cache, upload_dir = work / "cache", work / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    link_default_caches(cache)
    uploads = make_uploads(upload_dir, queries, seed)
    calls = plan_calls(uploads)

    env = {
        "HASHDEMO_CACHE_DIR": str(cache),
        "HASHDEMO_CACHE_MAX_MB": str(cap_mb),
        "HASHDEMO_CACHE_GRACE_S": str(grace_s),
    }
    with ServedApp(env, log=work / "server.log") as app:
        samples, errors, answers, seconds = drive_calls(app, calls, clients, sample, work)
    with ServedApp(env, log=work / "fresh.log") as fresh:
        same = replay_calls(fresh, calls[:sample], answers, work)
    pruned = [int(m) for m in re.findall(r"disk: removed (\d+) files", (work / "server.log").read_text())]
    return {
        "uploads": len(uploads),
        "calls": len(calls),
        "clients": clients,
        "seed": seed,
        "cap_mb": cap_mb,
        "grace_s": grace_s,
        "seconds": round(seconds, 1),
        "errors": errors,
        "pruned_files": sum(pruned),
        "server_log": str(work / "server.log"),
        "sample_equal_to_fresh_server": f"{same} of {min(sample, len(calls))}",
        **memory_summary(samples, len(calls)),
    }


def drive_calls(app, calls: list[tuple], clients: int, sample: int, work: Path) -> tuple:
    """Send `calls` to `app` from `clients` clients that download every picture, while a monitor samples
    the server's memory and the cache folders every second. Returns the samples, the errors, the
    plain answers of the first `sample` calls (by call index) and the seconds taken."""
    from gradio_client import Client

    from hashdemo.harness.served_app import plain_answer

    cache = work / "cache"
    budgeted = (cache / "outputs", cache / "gradio")
    samples, done, errors, answers = [], [0], [], {}
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            samples.append(usage_sample(app, cache, budgeted, time.monotonic() - began, done[0]))
            stop.wait(1.0)

    def worker(k: int) -> None:
        client = Client(app.url, verbose=False, download_files=str(work / f"client-{k}"))
        for i in range(k, len(calls), clients):
            try:
                out = soak_call(client, calls[i])
                if i < sample:
                    answers[i] = plain_answer(out)
            except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the run
                errors.append(f"call {i} ({calls[i][0]}): {type(error).__name__}: {error}"[:300])
            done[0] += 1

    began = time.monotonic()
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    stop.set()
    watcher.join()
    return samples, errors, answers, time.monotonic() - began


def replay_calls(fresh, calls: list[tuple], answers: dict, work: Path) -> int:
    """How many of `calls`, made again on a fresh server, give the plain answer recorded in the run."""
    from gradio_client import Client

    from hashdemo.harness.served_app import plain_answer

    client = Client(fresh.url, verbose=False, download_files=str(work / "client-fresh"))
    return sum(plain_answer(soak_call(client, call)) == answers.get(i) for i, call in enumerate(calls))


def soak_call(client, spec: tuple):
    from gradio_client import handle_file

    if spec[0] == "search":
        return client.predict(handle_file(spec[1]), 0.4, 32, 1000, api_name="/search")
    return client.predict(handle_file(spec[1]), handle_file(spec[2]), "union", api_name="/compose")


def usage_sample(app, cache: Path, budgeted: tuple[Path, ...], seconds: float, calls_done: int) -> dict:
    """One reading of the server's memory and the cache folders' sizes."""
    return {
        "t": round(seconds, 1),
        "calls_done": calls_done,
        "rss_mb": round(app.rss_mb(), 1),
        "folders_mb": {p.name: round(folder_mb(p), 1) for p in sorted(cache.iterdir()) if p.is_dir()},
        "budgeted_mb": round(sum(folder_mb(p) for p in budgeted), 1),
    }


def plan_calls(uploads: list[str]) -> list[tuple]:
    """search, search, compose, ...: each upload is sent exactly once."""
    calls, used = [], 0
    while used < len(uploads):
        if len(calls) % 3 == 2 and used + 2 <= len(uploads):
            calls.append(("compose", uploads[used], uploads[used + 1]))
            used += 2
        else:
            calls.append(("search", uploads[used]))
            used += 1
    return calls


def memory_summary(samples: list[dict], n_calls: int) -> dict:
    """Disk and RSS over the run, from the monitor's samples."""
    warm = next(s for s in samples if s["calls_done"] >= n_calls // 10)
    checkpoints = {"start": samples[0], "middle": samples[len(samples) // 2], "end": samples[-1]}
    return {
        "budgeted_max_mb": max(s["budgeted_mb"] for s in samples),
        "rss_after_warmup_mb": warm["rss_mb"],
        "rss_growth_after_warmup_mb": round(samples[-1]["rss_mb"] - warm["rss_mb"], 1),
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "checkpoints": checkpoints,
        "rss_by_tenth": [  # (calls done, RSS MB) at every tenth of the run
            (s["calls_done"], s["rss_mb"])
            for s in (next(x for x in samples if x["calls_done"] >= k * n_calls // 10) for k in range(10))
        ]
        + [(samples[-1]["calls_done"], samples[-1]["rss_mb"])],
    }


def add_parser(sub) -> None:
    parser = sub.add_parser("soak", help="thousands of distinct uploads: disk, memory, answers")
    parser.add_argument("--json", type=str, default=None)
    parser.add_argument("--queries", type=int, default=2000, help="distinct uploads (default 2000)")
    parser.add_argument("--cap-mb", type=float, default=200, help="HASHDEMO_CACHE_MAX_MB for the server")
    parser.add_argument("--grace-s", type=float, default=30, help="HASHDEMO_CACHE_GRACE_S for the server")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=cmd_soak)


def cmd_soak(args: argparse.Namespace) -> None:
    result = run_soak(args.queries, args.cap_mb, args.grace_s, args.clients, args.seed)
    print(
        f"{result['uploads']} distinct uploads in {result['calls']} calls from {result['clients']} clients, "
        f"{result['seconds']} s; cap {result['cap_mb']} MB, grace {result['grace_s']} s"
    )
    header = ["point", "calls done", "server RSS MB", "outputs + uploads MB", "every folder MB"]
    keys = ("calls_done", "rss_mb", "budgeted_mb", "folders_mb")
    rows = [[name, *(point[key] for key in keys)] for name, point in result["checkpoints"].items()]
    print(markdown_table(header, rows, digits=None))
    print(
        f"errors {len(result['errors'])}; outputs + uploads at most {result['budgeted_max_mb']} MB "
        f"({result['pruned_files']} files pruned); "
        f"RSS growth after warm-up {result['rss_growth_after_warmup_mb']} MB; "
        f"answers equal to a fresh server's: {result['sample_equal_to_fresh_server']}"
    )
    for error in result["errors"][:5]:
        print(error)
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
