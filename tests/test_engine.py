"""The engine's search: its global-only row is the coarse top-K a direct Hamming search gives."""

import numpy as np
import pytest

from hashdemo.data import load_outfits


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
