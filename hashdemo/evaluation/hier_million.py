"""The million's part of method 1's evaluation (`hashdemo.evaluation.million` measures it): accuracy
on the million real codes with K by the val rule, their speed and ten million modelled from them, the
scale rows' galleries by size, and `evaluate million`, run on its own and merged into the hier result."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.evaluation import million as million_eval
from hashdemo.evaluation.codes import Codes
from hashdemo.evaluation.objects import field_protocols
from hashdemo.evaluation.setup import Setup, prepare
from hashdemo.evaluation.speed import (
    EVERY_METHOD_UP_TO,
    random_gallery,
    real_gallery,
    scale_rows,
    two_level_ratios,
)
from hashdemo.model.checkpoints import CheckpointError
from hashdemo.retrieval.million import MILLION, MILLION_MODELS, MillionIncomplete, load_million
from hashdemo.retrieval.protocol import validation_ids
from hashdemo.retrieval.selection import cam_attention


def million_parts(
    dataset: Dataset,
    checkpoints: Path,
    setup: Setup,
    val,
    val_labels: np.ndarray,
    weights: np.ndarray,
    size: int = MILLION,
) -> tuple[dict | None, str | None]:
    """Accuracy on the million real codes (K by the val rule), their speed and ten million modelled
    from them; (None, why) where the million is not encoded."""
    try:
        codes = load_million(dataset, MILLION_MODELS, checkpoints, size)
    except (MillionIncomplete, CheckpointError) as error:
        return None, str(error)
    q = setup.query
    bits = (q.hier.global_bits.shape[1], q.hier.local_bits.shape[1])
    one_level = {name: q.one_level[name].shape[1] for name in MILLION_MODELS[1:] if name in q.one_level}
    indexes = million_eval.MillionIndexes.of(codes, bits, one_level)
    g_labels = np.asarray(codes.labels)
    val_q, _ = validation_ids(len(val_labels))
    val_selected = cam_attention(setup.hier, val.take(val_q), setup.theta).orders[:, : setup.top_l]
    chosen = million_eval.choose_k(indexes, val.take(val_q), val_selected, val_labels[val_q], g_labels)
    selected = setup.cam.orders[:, : setup.top_l]
    methods = million_eval.million_accuracy(
        indexes,
        q.hier,
        q.one_level,
        selected,
        chosen["K"],
        setup.q_labels,
        codes,
        field_protocols(setup.objects),
    )
    speed = million_eval.speed_at(indexes, weights, q.hier, setup.theta, setup.top_l, chosen["K"], "real")
    timed = {
        int(row["method"].split("@")[1]): row["ms_per_query"]
        for row in speed
        if row["method"].startswith("hier_cam@") and row["threads"] == 1 and row["mode"] == "single"
    }
    full = next(r["ms_per_query"] for r in speed if r["method"] == "local_full" and r["threads"] == 1)
    tradeoff = million_eval.k_tradeoff(indexes, q.hier, selected, setup.q_labels, g_labels, timed, full)
    modelled = million_eval.MillionIndexes.from_packed(million_eval.modelled_gallery(codes), bits)
    kind = "modelled from real codes"
    speed += million_eval.speed_at(
        modelled, weights, q.hier, setup.theta, setup.top_l, chosen["K"], kind, ks=(chosen["K"],)
    )
    json = {
        "n": codes.n,
        "codes": "real",
        "models": list(MILLION_MODELS),
        "K_rule": chosen,
        "methods": methods,
        "k_tradeoff": tradeoff,
        "speed": speed,
        "bytes_read": {
            str(n): million_eval.bytes_read(*bits, setup.top_l, chosen["K"], n) for n in (codes.n, modelled.n)
        },
    }
    # the scale rows time the same indexes again: built once here, for both
    galleries = {codes.n: (indexes, "real"), modelled.n: (modelled, kind)}
    return {"json": json, "galleries": galleries, "K": chosen["K"]}, None


def scale_galleries(
    setup: Setup, real: dict[int, Codes], million: dict | None, sizes: tuple[int, ...]
) -> dict:
    """How each timed size's gallery is built: real codes (10k, 100k, the million), ten million modelled
    from the million, or uniform random codes where no real ones exist (multi-index hashing's best case)."""
    like = next(iter(real.values()), None)
    builders = {}
    for n in sizes:
        if n in real:
            builders[n] = lambda n=n: (real_gallery(real[n]), "real", setup.n_coarse)
        elif million is not None and n in million["galleries"]:
            indexes, kind = million["galleries"][n]
            builders[n] = lambda indexes=indexes, kind=kind: (indexes.gallery(), kind, million["K"])
        else:
            builders[n] = lambda n=n: (
                random_gallery(n, like, n <= EVERY_METHOD_UP_TO),
                "uniform",
                setup.n_coarse,
            )
    return builders


def evaluate_million(dataset: Dataset, checkpoints: Path | None = None, size: int = MILLION) -> dict:
    """The million's part of `evaluate_hier` on its own, for a million encoded after the rest was
    evaluated: its accuracy, K rule and speed rows, and the scale rows of the million and of the ten
    million modelled from it (`evaluate million` merges them into the hier result)."""
    directory = checkpoints or dataset.checkpoints
    _, _, val, _, setup, _ = prepare(dataset, directory)
    weights = setup.hier.model.cam_weights().numpy()
    million, why_not = million_parts(
        dataset, directory, setup, val, dataset.splits["val"].labels, weights, size
    )
    if million is None:
        raise MillionIncomplete(why_not)
    builders = scale_galleries(setup, {}, million, tuple(million["galleries"]))
    scale = scale_rows(weights, setup.query, builders, setup.theta, setup.top_l)
    return {"million": million["json"], "scale": scale}


def merge_million(result: dict, part: dict) -> dict:
    """The hier result with the million's part in: its scale rows replace those of the same sizes (the
    uniform stand-ins), the ratios recomputed, and the note that the million was missing dropped."""
    sizes = {row["n"] for row in part["scale"]}
    scale = [row for row in result.get("scale", []) if row["n"] not in sizes] + part["scale"]
    bits = result["bits"]
    return {
        **result,
        "million": part["million"],
        "scale": sorted(scale, key=lambda row: row["n"]),
        "two_level_ratio": two_level_ratios(scale, bits["global"], bits["local"], result["L"]),
        "skipped": [note for note in result.get("skipped", []) if "million real codes" not in note],
    }
