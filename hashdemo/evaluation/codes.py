"""One set of images encoded as every single-image method of the hierarchical evaluation sees it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.model.networks import Encoded


@dataclass
class Codes:
    hier: Encoded  # the hierarchical model: H_g, H_l, pooled Conv7 (and Conv7 maps for queries)
    single: np.ndarray | None  # single-level code at H bits (None: not trained, on an imported set)
    single_local: np.ndarray | None  # single-level code at C bits

    def take(self, ids: np.ndarray) -> Codes:
        single, local = (None if codes is None else codes[ids] for codes in (self.single, self.single_local))
        return Codes(self.hier.take(ids), single, local)
