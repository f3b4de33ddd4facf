"""Benchmarks, one function per subcommand; each prints a markdown table and can write JSON.

- `search`: hashdemo's Hamming index (numpy path and default backend) against faiss.IndexBinaryFlat
  in one process on seeded random codes, checking that they agree.
- `app`: start-up time, the /search and /compose handlers' latency on the 10k gallery, peak memory;
  the peer is faiss's top-K search of the same query's global code over the same gallery.
- `load`: concurrent gradio_client callers against the real app on a loopback port: p50/p95 latency,
  errors, and whether every answer equals the one the same call gets alone.
- `million`: the two-level search on a million real gallery codes (and ten million modelled from them)
  against a full local-code scan in the same run (`hashdemo.cli.bench_million`).
- `milvus`: the gallery in milvus-lite and a Milvus server against the in-process index
  (`hashdemo.cli.bench_milvus`).
- `photos`: photographs' import memory, feature passes, head training and handler latency with torchvision
  backbones (`hashdemo.cli.bench_photos`).
- `soak`: thousands of distinct uploads against the app in its own process: disk, memory, answers
  (`hashdemo.cli.soak`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import faiss
import numpy as np

from hashdemo.cli import bench_device, bench_million, bench_milvus, bench_photos, soak
from hashdemo.evaluation.markdown import markdown_table
from hashdemo.retrieval.index import HammingIndex
from hashdemo.storage.files import write_atomic
from hashdemo.timing import median_ms

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
NBITS = (32, 64, 128)
BATCHES = (1, 100)
BUSY_MESSAGE = "Queue is full"  # what Gradio's bounded queue answers (gradio_client: QueueError)


def _agree(ours: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> dict:
    """Distances equal, and id sets equal per query (ties may only reorder ids)."""
    (d, i), (rd, ri) = ours, ref
    return {
        "distances_equal": bool(np.array_equal(d, rd)),
        "ids_equal": bool(np.array_equal(np.sort(i, axis=1), np.sort(ri, axis=1))),
    }


def run_search_bench(
    sizes: Sequence[int] = SIZES,
    nbits_list: Sequence[int] = NBITS,
    batches: Sequence[int] = BATCHES,
    k: int = 100,
    seed: int = 0,
) -> dict:
    """Time top-k search for each (N, nbits, batch); returns the JSON-ready results."""
    rng = np.random.default_rng(seed)
    # faiss's OpenMP threads stall when other processes hold the cores: record the load.
    load_average = os.getloadavg()[0]
    rows = []
    for n in sizes:
        repeats = 3 if n >= 1_000_000 else 7  # keeps the full bench within a few minutes
        for nbits in nbits_list:
            rows += _bench_gallery(rng, n, nbits, batches, k, repeats)
    return {
        "bench": "search",
        "seed": seed,
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "cpus": os.cpu_count(),
        "load_average": load_average,
        "rows": rows,
    }


def _random_bits(rng: np.random.Generator, n: int, nbits: int) -> np.ndarray:
    """n uniform random codes of nbits: random bytes unpacked, 8x cheaper to draw than single bits."""
    return np.unpackbits(rng.integers(0, 256, (n, nbits // 8), dtype=np.uint8), axis=1)


def _bench_gallery(
    rng: np.random.Generator, n: int, nbits: int, batches: Sequence[int], k: int, repeats: int
) -> list[dict]:
    """One seeded random gallery of n codes in both indexes, timed for each query batch size."""
    db_bits = _random_bits(rng, n, nbits)
    index = HammingIndex(db_bits)
    faiss_index = faiss.IndexBinaryFlat(nbits)
    faiss_index.add(np.packbits(db_bits, axis=1))
    del db_bits
    rows = []
    for batch in batches:
        q_bits = _random_bits(rng, batch, nbits)
        timed = _time_batch(index, faiss_index, q_bits, k, repeats)
        rows.append({"n": n, "nbits": nbits, "queries": batch, "k": k, "repeats": repeats, **timed})
    return rows


def _numpy_path(index: HammingIndex, q_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The index's own numpy path (used for long rankings): all distances, stable sort."""
    dist = index.distances(q_bits)
    ids = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, ids, axis=1), ids


def _time_batch(
    index: HammingIndex, faiss_index: faiss.IndexBinaryFlat, q_bits: np.ndarray, k: int, repeats: int
) -> dict:
    """Median times of the numpy path, the default backend and faiss for one batch of queries, their
    ratios to faiss, and whether each agrees with faiss."""
    q_packed = np.packbits(q_bits, axis=1)
    timings = {
        "numpy_ms": median_ms(partial(_numpy_path, index, q_bits, k), repeats),
        "default_ms": median_ms(partial(index.search, q_bits, k), repeats),
        "faiss_ms": median_ms(partial(faiss_index.search, q_packed, k), repeats),
    }
    ref = faiss_index.search(q_packed, k)
    return {
        **timings,
        "numpy_over_faiss": timings["numpy_ms"] / timings["faiss_ms"],
        "default_over_faiss": timings["default_ms"] / timings["faiss_ms"],
        "numpy_vs_faiss": _agree(_numpy_path(index, q_bits, k), ref),
        "default_vs_faiss": _agree(index.search(q_bits, k), ref),
    }


def format_table(result: dict) -> str:
    """The search bench as a markdown table (times in ms, ratio = ours / faiss)."""
    header = ["N", "bits", "queries", "numpy path", "default backend", "faiss", "numpy/faiss"]
    header += ["default/faiss", "same results"]
    rows = []
    for r in result["rows"]:
        same = all(
            r[pair][check]
            for pair in ("numpy_vs_faiss", "default_vs_faiss")
            for check in ("distances_equal", "ids_equal")
        )
        times = ("numpy_ms", "default_ms", "faiss_ms", "numpy_over_faiss", "default_over_faiss")
        cells = [f"{r[k]:.2f}" for k in times]
        rows.append([f"{r['n']:,}", r["nbits"], r["queries"], *cells, "yes" if same else "NO"])
    return markdown_table(header, rows, align="rrrrrrrrc")


def cmd_search(args: argparse.Namespace) -> None:
    """`search` subcommand: run, print the table, write JSON."""
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)
    result = run_search_bench(sizes=sizes, k=args.k, seed=args.seed)
    print(
        f"top-{args.k} Hamming search, median ms; numpy {result['numpy']}, "
        f"faiss {result['faiss']} ({result['faiss_threads']} threads), {result['cpus']} CPUs, "
        f"load average at start {result['load_average']:.2f}"
    )
    print(format_table(result))
    _write_json(args.json, result)


def run_app_bench(repeats: int = 50) -> dict:
    """Start-up of `import app` (in a fresh process, caches present), then the work of the /search and
    /compose handlers (engine call and pictures, as `Presenter` does it) against a faiss peer."""
    import resource
    import subprocess
    import sys

    from hashdemo.service.engine import Engine

    root = Path(__file__).resolve().parents[2]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import app"], cwd=root, check=True, capture_output=True)
    ready_s = time.perf_counter() - started
    engine = Engine.load()
    n_coarse = engine.defaults["K"]
    global_bits = engine.hier_codes.global_bits
    peer = faiss.IndexBinaryFlat(global_bits.shape[1])
    peer.add(np.packbits(global_bits, axis=1))
    query = np.packbits(global_bits[:1], axis=1)
    result = {
        "gallery": len(global_bits),
        "ready_s": round(ready_s, 2),
        **handler_ms(engine, repeats),
        "faiss_topk_ms": round(median_ms(lambda: peer.search(query, n_coarse), repeats), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "params": {key: engine.defaults[key] for key in ("theta", "L", "K")},
    }
    result["search_over_faiss"] = round(result["search_ms"] / result["faiss_topk_ms"], 1)
    return result


def handler_ms(engine, repeats: int) -> dict[str, float]:
    """Median ms of what the /search and /compose handlers do on the app's examples: the engine call
    (the query's forward pass included) and the pictures, as `Presenter` does it."""
    import tempfile

    from hashdemo.app.picture_files import PictureFiles
    from hashdemo.app.presenter import Presenter
    from hashdemo.app.state import SearchState
    from hashdemo.app.widgets import examples_dir, write_examples

    examples = [engine.read_image(p) for p in write_examples(engine, examples_dir())]
    present = Presenter(engine, PictureFiles(Path(tempfile.mkdtemp(prefix="hashdemo-bench-"))))
    theta, top_l, n_coarse = (engine.defaults[key] for key in ("theta", "L", "K"))
    cycle = iter(range(10**9))

    def one_search() -> None:
        query = engine.make_query(examples[next(cycle) % len(examples)])
        state = SearchState(query, "", (theta, top_l, n_coarse))
        present.search(engine.search(query, theta, top_l, n_coarse), None, state, "")  # side-by-side closed

    def one_compose() -> None:
        i = next(cycle)
        present.compose(
            engine.compose(examples[i % len(examples)], examples[(i + 1) % len(examples)], "union"), ""
        )

    return {
        "search_ms": round(median_ms(one_search, repeats), 2),
        "compose_ms": round(median_ms(one_compose, repeats), 2),
    }


def cmd_app(args: argparse.Namespace) -> None:
    result = run_app_bench(args.repeats)
    print(
        f"app on the {result['gallery']}-image gallery, median of {args.repeats} calls, {os.cpu_count()} CPUs"
    )
    keys = ("ready_s", "search_ms", "compose_ms", "faiss_topk_ms", "search_over_faiss", "peak_rss_mb")
    print(markdown_table(["measure", "value"], [[key, result[key]] for key in keys], digits=None))
    _write_json(args.json, result)


def load_call(client, examples: Sequence[str], i: int):
    """Call i of a load run: even calls /search, odd /compose, on the examples in turn; returns the
    call's key and the parts of its answer that must not depend on what else the server does."""
    from gradio_client import handle_file

    from hashdemo.app.presenter import COMPOSE_OUTPUTS, SEARCH_OUTPUTS

    example = handle_file(examples[i % len(examples)])
    if i % 2 == 0:
        out = dict(
            zip(SEARCH_OUTPUTS, client.predict(example, 0.4, 16, 200, api_name="/search"), strict=True)
        )
        return ("search", i % len(examples)), (out["info"], [t["caption"] for t in out["reranked"]])
    other = handle_file(examples[(i + 3) % len(examples)])
    answer = client.predict(example, other, "intersection", api_name="/compose")
    out = dict(zip(COMPOSE_OUTPUTS, answer, strict=True))
    return ("compose", i % len(examples)), (out["summary"], [t["caption"] for t in out["composed"]])


def run_load(
    url: str,
    examples: Sequence[str],
    callers: int = 16,
    calls_each: int = 2,
    timeout_s: float = 300.0,
    download_files: bool = True,
) -> dict:
    """`callers` threads, each with its own client, alternating /search and /compose on `url`
    (loopback only); every answer is compared with the same call made alone beforehand."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError("the load test only targets the loopback interface")
    solo_client = Client(url, verbose=False, download_files=download_files)
    expected = dict(load_call(solo_client, examples, i) for i in range(2 * len(examples)))
    deadline = time.perf_counter() + timeout_s

    def caller(c: int) -> list[tuple[float, str]]:
        client, outcomes = Client(url, verbose=False, download_files=download_files), []
        for j in range(calls_each):
            if time.perf_counter() > deadline:
                outcomes.append((0.0, "timeout"))
                continue
            start = time.perf_counter()
            try:
                key, answer = load_call(client, examples, c * calls_each + j)
                outcomes.append(
                    (time.perf_counter() - start, "ok" if answer == expected[key] else "different")
                )
            except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the run
                message = f"{type(error).__name__}: {error}"
                busy = BUSY_MESSAGE in message  # load shedding: refused at once, told to try again
                outcomes.append((time.perf_counter() - start, "busy" if busy else f"error: {message}"[:200]))
        return outcomes

    with ThreadPoolExecutor(callers) as pool:
        outcomes = [o for result in pool.map(caller, range(callers)) for o in result]
    return {"callers": callers, "download_files": download_files, **load_summary(outcomes)}


def load_summary(outcomes: list[tuple[float, str]]) -> dict:
    latencies = [t for t, status in outcomes if status in ("ok", "different")]
    return {
        "calls": len(outcomes),
        "ok": sum(status == "ok" for _, status in outcomes),
        "different": sum(status == "different" for _, status in outcomes),
        "busy": sum(status == "busy" for _, status in outcomes),
        "longest_s": round(max(t for t, _ in outcomes), 2),
        "errors": [status for _, status in outcomes if status not in ("ok", "different", "busy")],
        "p50_ms": round(1e3 * float(np.percentile(latencies, 50)), 1) if latencies else None,
        "p95_ms": round(1e3 * float(np.percentile(latencies, 95)), 1) if latencies else None,
    }


def cmd_load(args: argparse.Namespace) -> None:
    """Serve `app.py` in its own process (as a user would), then load it from this one."""
    from hashdemo.app.widgets import example_files
    from hashdemo.harness.served_app import ServedApp

    with ServedApp() as app:  # the app writes its examples at start
        result = run_load(
            app.url, example_files(), args.callers, args.calls_each, download_files=args.download
        )
    print(
        f"{result['callers']} concurrent callers, {result['calls']} calls mixing /search and /compose; "
        f"each call's latency {'includes' if args.download else 'excludes'} fetching its ~35 output pictures"
    )
    header = ["calls", "same as alone", "different", "refused, busy", "errors"]
    header += ["p50 ms", "p95 ms", "longest s"]
    counts = [result[key] for key in ("calls", "ok", "different", "busy")]
    times = [result[key] for key in ("p50_ms", "p95_ms", "longest_s")]
    print(markdown_table(header, [[*counts, len(result["errors"]), *times]], digits=None))
    for error in result["errors"][:5]:
        print(error)
    _write_json(args.json, result)


def _write_json(path: str | None, result: dict) -> None:
    if path:
        write_atomic(path, json.dumps(result, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hashdemo bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="hashdemo's Hamming index vs faiss IndexBinaryFlat")
    search.add_argument("--json", type=str, default=None, help="write results to this path")
    search.add_argument("--quick", action="store_true", help="N = 10k only (smoke test)")
    search.add_argument("--sizes", type=int, nargs="+", default=None, help="override N values")
    search.add_argument("--k", type=int, default=100, help="results per query")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument(
        "--faiss-threads", type=int, default=0, help="faiss OpenMP threads (default: 1, as the index sets)"
    )
    search.set_defaults(func=cmd_search)
    app_bench = sub.add_parser("app", help="the app's start-up, handler latency and memory")
    app_bench.add_argument("--json", type=str, default=None)
    app_bench.add_argument("--repeats", type=int, default=50)
    app_bench.set_defaults(func=cmd_app)
    load = sub.add_parser("load", help="concurrent gradio_client callers on a loopback port")
    load.add_argument("--json", type=str, default=None)
    load.add_argument("--callers", type=int, default=16)
    load.add_argument("--calls-each", type=int, default=2)
    load.add_argument("--download", action="store_true", help="clients also fetch every output picture")
    load.set_defaults(func=cmd_load)
    bench_milvus.add_parser(sub)
    bench_million.add_parser(sub)
    bench_device.add_parser(sub)
    bench_photos.add_parser(sub)
    soak.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
