"""The engine's search: its global-only row is the coarse top-K a direct Hamming search gives."""

import numpy as np
import pytest

from hashdemo.data.outfits import load_outfits


@pytest.mark.parametrize("n_coarse", [5, 50, 1000])
def test_coarse_row_equals_a_direct_global_search(engine, n_coarse):
    query = load_outfits()["query"]
    for i in range(10):
        result = engine.search(query.images[i], 0.7, 16, n_coarse)
        distances, ids = engine.global_index.search(result.query.encoded.global_bits, n_coarse)
        np.testing.assert_array_equal(result.coarse.ids, ids[0])
        np.testing.assert_array_equal(result.coarse.distances, distances[0])
        assert set(result.reranked.ids) == set(ids[0])
        # the rows carry their relevance (a query-split image's labels are known): shares a label
        shares = (engine.gallery_labels[result.reranked.ids] & query.labels[i]).any(axis=1)
        np.testing.assert_array_equal(result.reranked.relevant, shares)
        assert result.reranked.precision_at(10) == shares[:10].mean()


def test_a_smooth_gradient_is_flagged_and_val_images_mostly_are_not(engine):
    """The detail check (issue 21, item 8): a gradient has no items; the features alone let it pass."""
    from hashdemo.evaluation.hierarchical import far_from_domain_images

    gradients = far_from_domain_images("gradient", 20, seed=3)
    answers = [engine.search(image, 0.5, 32, 100) for image in gradients]
    assert all(answer.smooth and answer.out_of_domain for answer in answers)
    val = load_outfits()["val"].images[:300]
    smooth = np.mean([engine.too_smooth(image) for image in val])
    assert smooth <= 0.03  # the cut-off is val's 1st percentile of detail
    assert engine.smooth_below is not None and engine.smooth_below > 0
