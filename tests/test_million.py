"""The million gallery: the chunked encoding resumes after a kill with identical codes, a search of the
packed codes equals a brute-force ranking, and the K rule never sees the query split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hashdemo.evaluation import million as million_eval
from hashdemo.model.networks import Encoded
from hashdemo.retrieval import million
from hashdemo.retrieval.index import HammingIndex
from hashdemo.retrieval.million import MillionCodes


class Killed(RuntimeError):
    pass


@pytest.mark.slow
def test_a_killed_encoding_resumes_and_its_codes_equal_an_encoding_in_one_go(monkeypatch):
    from hashdemo.data.dataset import open_dataset
    from hashdemo.model.checkpoints import load_checkpoint

    dataset, names, size, chunk = open_dataset(), ("hier", "single_level"), 1500, 500
    directory = million.million_directory(dataset, names, size, dataset.checkpoints)
    shutil.rmtree(directory, ignore_errors=True)
    real_write, markers = million.write_atomic, []

    def dies_at_the_second_marker(path, data, durable=True):
        if markers:
            raise Killed("killed after the second chunk's codes, before its marker")
        markers.append(path)
        return real_write(path, data, durable)

    monkeypatch.setattr(million, "write_atomic", dies_at_the_second_marker)
    with pytest.raises(Killed):
        million.encode_million(dataset, names, dataset.checkpoints, size, chunk)
    with pytest.raises(million.MillionIncomplete, match="2 of 3 chunks"):
        million.load_million(dataset, names, dataset.checkpoints, size, chunk)
    monkeypatch.setattr(million, "write_atomic", real_write)
    million.encode_million(dataset, names, dataset.checkpoints, size, chunk)  # goes on where it stopped
    codes = million.load_million(dataset, names, dataset.checkpoints, size, chunk)
    split = dataset.large_gallery(np.arange(size))
    hier = load_checkpoint("hier", dataset.checkpoints).model.encode(split.images)
    single = load_checkpoint("single_level", dataset.checkpoints).model.encode(split.images)
    assert (codes.packed["hier.global"] == np.packbits(hier.global_bits, axis=1)).all()
    assert (codes.packed["hier.local"] == np.packbits(hier.local_bits, axis=1)).all()
    assert (codes.packed["single_level.global"] == np.packbits(single.global_bits, axis=1)).all()
    assert (codes.labels == split.labels).all() and (codes.classes == split.classes).all()
    shutil.rmtree(directory)


def synthetic_million(n: int = 20_000, seed: int = 0) -> tuple[MillionCodes, Encoded, np.ndarray]:
    """Codes that cluster by label set (as real ones do), packed as the million stores them."""
    rng = np.random.default_rng(seed)
    labels = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, n)]
    centres_g, centres_l = (
        rng.integers(0, 2, (4, 32), dtype=np.uint8),
        rng.integers(0, 2, (4, 64), dtype=np.uint8),
    )
    cls = labels.argmax(1)
    g = centres_g[cls] ^ (rng.random((n, 32)) < 0.15).astype(np.uint8)
    local = centres_l[cls] ^ (rng.random((n, 64)) < 0.15).astype(np.uint8)
    codes = MillionCodes(
        {"hier.global": np.packbits(g, axis=1), "hier.local": np.packbits(local, axis=1)},
        labels,
        np.full((n, 3), -1, np.int8),
    )
    q = Encoded(g[:50] ^ 1, local[:50] ^ 1, np.zeros((50, 64), np.float32), np.zeros((50, 4), np.float32))
    return codes, q, labels


def test_the_packed_million_search_equals_a_brute_force_ranking_on_a_seeded_slice():
    codes, _, _ = synthetic_million()
    rng = np.random.default_rng(1)
    queries = rng.integers(0, 2, (5, 32), dtype=np.uint8)
    bits = np.unpackbits(codes.packed["hier.global"], axis=1)
    for multi_index in (True, False):
        index = HammingIndex.from_packed(codes.packed["hier.global"], 32, multi_index=multi_index)
        dist, ids = index.search(queries, 100)
        for q, row_d, row_i in zip(queries, dist, ids, strict=True):
            brute = (bits != q).sum(1)
            order = np.lexsort((np.arange(len(bits)), brute))[:100]
            assert row_i.tolist() == order.tolist()
            assert row_d.tolist() == brute[order].tolist()


def test_the_k_rule_takes_the_smallest_k_near_the_best_val_score_and_never_the_query_split():
    codes, val, _ = synthetic_million()
    indexes = million_eval.MillionIndexes.of(codes, (32, 64), {})
    rng = np.random.default_rng(0)
    selected = np.stack([rng.permutation(64)[:16] for _ in range(50)])
    val_labels = codes.labels[:50]
    chosen = million_eval.choose_k(indexes, val, selected, val_labels, codes.labels)
    best = max(chosen["val"].values())
    assert chosen["val"][str(chosen["K"])] >= best - million_eval.K_TIE
    smaller = [k for k in million_eval.K_GRID if k < chosen["K"]]
    assert all(chosen["val"][str(k)] < best - million_eval.K_TIE for k in smaller)
    # the rule's inputs are val and the gallery: changing the query split's labels cannot move it
    assert "q_labels" not in million_eval.choose_k.__code__.co_varnames


def test_bytes_read_counts_the_whole_local_code_of_each_candidate():
    read = million_eval.bytes_read(32, 256, 32, 1000, 1_000_000)
    assert read["bytes_read_per_query"] == 1_000_000 * 4 + 1000 * 32
    assert read["bits_compared_per_image"] == pytest.approx(32 + 32 * 1000 / 1_000_000)
    assert read["bytes_ratio"] == pytest.approx((4_000_000 + 32_000) / 32_000_000, abs=1e-4)


def test_ten_million_modelled_codes_keep_the_real_ones_and_flip_a_few_bits_in_each_copy():
    codes, _, _ = synthetic_million(n=1000)
    modelled = million_eval.modelled_gallery(codes, copies=3)
    real = codes.packed["hier.local"]
    assert modelled["hier.local"].shape == (3000, real.shape[1])
    assert (modelled["hier.local"][:1000] == real).all()
    flipped = np.unpackbits(modelled["hier.local"][1000:2000] ^ real, axis=1).mean()
    assert 0.01 < flipped < 0.03


def test_the_million_s_part_replaces_the_uniform_rows_of_its_sizes_and_the_note_that_it_was_missing():
    from hashdemo.evaluation.hier_million import merge_million

    def row(n, method, ms, codes):
        return {"n": n, "method": method, "ms_per_query": ms, "codes": codes, "K": 1000}

    result = {
        "bits": {"global": 32, "local": 256},
        "L": 32,
        "scale": [row(10_000, m, 1.0, "real") for m in ("local_full", "hier_cam", "hier_random")]
        + [row(1_000_000, m, 2.0, "uniform") for m in ("local_full", "hier_cam", "hier_random")],
        "skipped": ["accuracy and speed on a million real codes: 50 of 50 chunks are not encoded", "other"],
    }
    part = {
        "million": {"n": 1_000_000},
        "scale": [
            row(1_000_000, m, ms, "real")
            for m, ms in (("local_full", 4.0), ("hier_cam", 2.0), ("hier_random", 1.0))
        ],
    }
    merged = merge_million(result, part)
    assert {r["codes"] for r in merged["scale"] if r["n"] == 1_000_000} == {"real"}
    assert len(merged["scale"]) == 6
    assert [r["hier_cam_over_local_full"] for r in merged["two_level_ratio"]] == [1.0, 0.5]
    assert merged["skipped"] == ["other"]
    assert merged["million"] == {"n": 1_000_000}
