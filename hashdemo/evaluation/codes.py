"""One set of images encoded as every single-image method of the hierarchical evaluation sees it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.models import Encoded


@dataclass
class Codes:
    hier: Encoded  # the hierarchical model: H_g, H_l, pooled Conv7 (and Conv7 maps for queries)
    single: np.ndarray  # single-level code at H bits
    single_local: np.ndarray  # single-level code at C bits

    def take(self, ids: np.ndarray) -> Codes:
        return Codes(self.hier.take(ids), self.single[ids], self.single_local[ids])
