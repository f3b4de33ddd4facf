"""The engine's searches against an independent numpy computation: a brute-force Hamming ranking of the
gallery's codes (popcount of XOR, ties by id) and a re-ranking of its top K on the selected local bits."""

import numpy as np
import pytest

from hashdemo.data.outfits import load_outfits
from hashdemo.service.relevance import RELEVANCE


def hamming(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(N,) Hamming distances of 0/1 rows to a 0/1 query: the popcount of the packed XOR."""
    xor = np.bitwise_xor(np.packbits(codes, axis=1), np.packbits(query)[None])
    return np.unpackbits(xor, axis=1).sum(axis=1)


def on_bits(codes: np.ndarray, query: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Hamming distances on the chosen bits only (eq. 2.5's distance on the selected local bits)."""
    return hamming(codes[:, bits], query[bits])


def ranked(distances: np.ndarray, ids: np.ndarray, *later: np.ndarray) -> np.ndarray:
    """`ids` ordered by distance, then each of `later` (tie-breakers), then id."""
    return ids[np.lexsort((ids, *reversed(later), distances))]


def test_the_gallery_codes_searched_are_the_models_codes(engine):
    """The brute force below reads engine.hier_codes: they are what the model gives the gallery."""
    sample = np.linspace(0, len(engine.gallery_images) - 1, 8).astype(int)
    encoded = engine.hier.model.encode(engine.gallery_images[sample])
    np.testing.assert_array_equal(encoded.global_bits, engine.hier_codes.global_bits[sample])
    np.testing.assert_array_equal(encoded.local_bits, engine.hier_codes.local_bits[sample])


@pytest.mark.parametrize("n_coarse", [5, 50, 1000])
def test_search_rows_equal_a_brute_force_numpy_ranking(engine, n_coarse):
    query = load_outfits()["query"]
    gallery = engine.hier_codes
    every = np.arange(len(gallery.global_bits))
    for i in range(10):
        result = engine.search(query.images[i], 0.7, 16, n_coarse)
        codes = engine.hier.model.encode(query.images[i][None])
        np.testing.assert_array_equal(result.query.encoded.global_bits, codes.global_bits)
        global_d = hamming(gallery.global_bits, codes.global_bits[0])
        coarse = ranked(global_d, every)[:n_coarse]
        np.testing.assert_array_equal(result.coarse.ids, coarse)
        np.testing.assert_array_equal(result.coarse.distances, global_d[coarse])
        # the re-rank: the same K by (distance on the L selected local bits, global distance, id)
        selected = result.attention.selected
        assert len(selected) == len(set(selected.tolist())) == 16
        local = codes.local_bits[0]
        rerank = ranked(on_bits(gallery.local_bits[coarse], local, selected), coarse, global_d[coarse])
        np.testing.assert_array_equal(result.reranked.ids, rerank)
        np.testing.assert_array_equal(
            result.reranked.distances, on_bits(gallery.local_bits[rerank], local, selected)
        )
        np.testing.assert_array_equal(result.reranked.global_distances, global_d[rerank])
        # the rows carry their relevance (a query-split image's labels are known): shares a label
        shares = (engine.gallery_labels[rerank] & query.labels[i]).any(axis=1)
        np.testing.assert_array_equal(result.reranked.relevant, shares)
        assert result.reranked.precision_at(10) == shares[:10].mean()


def test_compare_rows_equal_brute_force_rankings(engine):
    query = load_outfits()["query"]
    gallery, every = engine.hier_codes, np.arange(len(engine.hier_codes.global_bits))
    for i in range(3):
        asked = engine.make_query(query.images[i])
        comparison = engine.compare(asked, 0.7, 16, 200, k=10)
        codes = asked.encoded
        global_d = hamming(gallery.global_bits, codes.global_bits[0])
        full_d = hamming(gallery.local_bits, codes.local_bits[0])
        for name, distances in (("global", global_d), ("local_full", full_d)):
            top = ranked(distances, every)[:10]
            np.testing.assert_array_equal(comparison.rows[name].ids, top)
            np.testing.assert_array_equal(comparison.rows[name].distances, distances[top])
        coarse = ranked(global_d, every)[:200]
        selected = engine.search(asked, 0.7, 16, 200).attention.selected
        local_d = on_bits(gallery.local_bits[coarse], codes.local_bits[0], selected)
        cam_row = ranked(local_d, coarse, global_d[coarse])[:10]
        np.testing.assert_array_equal(comparison.rows["hier_cam"].ids, cam_row)
        assert "hier_box" not in comparison.rows
        for name, checkpoint in engine.peers.items():  # each peer's own code of the query
            bits = checkpoint.model.encode(query.images[i][None]).global_bits[0]
            peer_d = hamming(engine.peer_codes[name], bits)
            np.testing.assert_array_equal(comparison.rows[name].ids, ranked(peer_d, every)[:10])


def test_every_trained_peer_sits_beside_the_method(engine):
    from hashdemo.model.registry import PEERS
    from hashdemo.storage.locations import CHECKPOINT_DIR

    trained = {name for name in PEERS if (CHECKPOINT_DIR / name / "model.pt").is_file()}
    assert set(engine.peers) == trained
    sample = np.linspace(0, len(engine.gallery_images) - 1, 8).astype(int)
    for name, checkpoint in engine.peers.items():  # the codes searched are the peer's own
        encoded = checkpoint.model.encode(engine.gallery_images[sample]).global_bits
        np.testing.assert_array_equal(encoded, engine.peer_codes[name][sample])


def test_a_smooth_gradient_is_flagged_and_val_images_mostly_are_not(engine):
    """The detail check: a gradient has no items; the features alone let it pass."""
    from hashdemo.evaluation.out_of_domain import far_from_domain_images

    gradients = far_from_domain_images("gradient", 20, seed=3)
    answers = [engine.search(image, 0.5, 32, 100) for image in gradients]
    assert all(answer.smooth and answer.out_of_domain for answer in answers)
    val = load_outfits()["val"].images[:300]
    smooth = np.mean([engine.too_smooth(image) for image in val])
    assert smooth <= 0.03  # the cut-off is val's 1st percentile of detail
    assert engine.smooth_below is not None and engine.smooth_below > 0


def test_a_wide_smooth_ramp_is_flagged_though_its_pad_is_an_edge(engine):
    """Issue 37, defect 15: a 400x300 two-colour ramp (red rising, green falling, blue flat) is squared by
    black bands, whose edges had passed for detail; the detail leaves the pad out."""
    import io

    from PIL import Image

    x = np.linspace(0, 255, 400)[None, :].repeat(300, 0)
    ramp = np.stack([x, 255 - x, np.full_like(x, 128)], -1).astype(np.uint8)
    data = io.BytesIO()
    Image.fromarray(ramp).save(data, "PNG")
    answer = engine.search(engine.read_image(data.getvalue()), 0.5, 32, 100)
    assert answer.smooth and answer.out_of_domain


def _apart(boxes: np.ndarray) -> int | None:
    """A slot whose (top, left, height, width) box meets no other recorded box, None if there is none."""
    valid = [k for k in range(len(boxes)) if boxes[k, 0] >= 0]
    for k in valid:
        t, left, h, w = boxes[k]
        if all(
            t + h <= boxes[o, 0]
            or boxes[o, 0] + boxes[o, 2] <= t
            or left + w <= boxes[o, 1]
            or boxes[o, 1] + boxes[o, 3] <= left
            for o in valid
            if o != k
        ):
            return k
    return None


def test_each_relevance_rule_judges_the_same_rows_by_labels_or_recorded_items(engine):
    """Issue 37, item 1: the rows are the search's whatever the rule; only what counts as relevant changes:
    the query's label set shared or equal, the attended item's class held, the boxed item's class held."""
    query = load_outfits()["query"]
    boxed_seen = 0
    for i in range(12):
        image, labels = query.images[i], query.labels[i]
        answers = {rule: engine.search(image, 0.4, 16, 200, relevance=rule) for rule in RELEVANCE}
        ids = answers["label"].reranked.ids
        held = engine.gallery_labels[ids].astype(bool)
        for answer in answers.values():
            np.testing.assert_array_equal(answer.reranked.ids, ids)
        np.testing.assert_array_equal(answers["label"].reranked.relevant, (held & labels.astype(bool)).any(1))
        np.testing.assert_array_equal(
            answers["exact"].reranked.relevant, (held == labels.astype(bool)).all(1)
        )
        attended = answers["attended"].attended
        assert attended in query.classes[i] and labels[attended]  # a recorded item of this query
        np.testing.assert_array_equal(answers["attended"].reranked.relevant, held[:, attended])
        assert answers["boxed"].reranked.relevant is None  # no box: the rule cannot judge
        assert engine.answer_figures(answers["boxed"], answers["boxed"].reranked) is None
        exact = engine.answer_figures(answers["exact"], answers["exact"].reranked)
        assert exact.precision == answers["exact"].reranked.relevant[:10].mean()
        slot = _apart(query.boxes[i])
        if slot is not None:  # the user's box on one item alone: relevant = holds that item's class
            t, left, h, w = (int(v) for v in query.boxes[i, slot])
            boxed = engine.search(
                image, 0.4, 16, 200, box=(t, left, t + h - 1, left + w - 1), relevance="boxed"
            )
            item = query.classes[i, slot]
            np.testing.assert_array_equal(
                boxed.reranked.relevant, engine.gallery_labels[boxed.reranked.ids, item].astype(bool)
            )
            boxed_seen += 1
    assert boxed_seen >= 3
    flipped = np.ascontiguousarray(query.images[0][:, ::-1])  # not a dataset image: nothing is known
    for rule in RELEVANCE:
        assert engine.search(flipped, 0.4, 16, 200, relevance=rule).reranked.relevant is None
    with pytest.raises(ValueError, match="relevance is one of label, exact, attended, boxed"):
        engine.search(query.images[0], 0.4, 16, 200, relevance="similar")


def test_the_query_split_s_gains_are_each_query_s_own_search_figures(engine):
    """Issue 37, item 3: the split browser's AP@100 per query, without and with the re-rank, equals the
    figures one search of that query shows; the rule applies as it does in a search."""
    gains = engine.query_split.gains(0.4, 16, 300, "label")
    assert len(gains.ids) == gains.split_size == len(engine.query_images) and gains.judged.all()
    for q in (0, 7, 123, len(gains.ids) - 1):
        answer = engine.search(engine.query_images[gains.ids[q]], 0.4, 16, 300)
        assert gains.global_ap[q] == pytest.approx(engine.answer_figures(answer, answer.coarse).ap_at_100)
        assert gains.reranked_ap[q] == pytest.approx(engine.answer_figures(answer, answer.reranked).ap_at_100)
    assert (gains.gain > 0).any() and (gains.gain < 0).any()  # the CAM bits both help and hurt somewhere
    assert engine.query_split.gains(0.4, 16, 300, "label") is gains  # kept for the next look
    exact = engine.query_split.gains(0.4, 16, 300, "exact")
    answer = engine.search(engine.query_images[exact.ids[3]], 0.4, 16, 300, relevance="exact")
    assert exact.reranked_ap[3] == pytest.approx(engine.answer_figures(answer, answer.reranked).ap_at_100)
    boxed = engine.query_split.gains(0.4, 16, 300, "boxed")
    assert not boxed.judged.any() and np.isnan(boxed.gain).all()  # no query carries a box


def test_a_result_is_matched_on_the_bits_selected_for_the_query_or_its_box(engine):
    """The match explained: the query's selected bits (on its CAM region, or on the user's box instead) and
    where those maps fire in the result; agreement counted on the same bits."""
    from hashdemo.model.cam import maps_region
    from hashdemo.service.engine import box_mask

    query = engine.make_query(engine.query_images[3])
    answer = engine.search(query, 0.5, 16, 200)
    result = int(answer.reranked.ids[2])
    encoded = engine.hier.model.encode(engine.gallery_images[result][None], with_conv7=True)
    for box in (None, (5, 5, 30, 30)):
        region = None if box is None else box_mask(box, engine.image_size)
        attention = engine.attention(query.encoded, 0.5, 16, region)
        why = engine.why(query, result, 0.5, 16, box=box)
        np.testing.assert_array_equal(why.query_region, attention.region)
        fired_map, fired = maps_region(encoded.conv7[0], attention.selected, 0.5)
        np.testing.assert_array_equal(why.fired, fired)
        np.testing.assert_allclose(why.fired_map, fired_map)
        agree = encoded.local_bits[0, attention.selected] == query.encoded.local_bits[0, attention.selected]
        assert why.agree == [int(c) for c in attention.selected[agree]]
    assert why.query_region.sum() != engine.why(query, result, 0.5, 16).query_region.sum()
