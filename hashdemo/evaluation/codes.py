"""One set of images encoded as every single-image method of the hierarchical evaluation sees it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.model.networks import Encoded


@dataclass
class Codes:
    hier: Encoded  # the hierarchical model: H_g, H_l, pooled Conv7 (and Conv7 maps for queries)
    one_level: dict[str, np.ndarray]  # each trained one-level model's codes by name (baselines, peers)

    @property
    def single(self) -> np.ndarray | None:
        """The one-level baseline at the global code's length (None: not trained)."""
        return self.one_level.get("single_level")

    @property
    def single_local(self) -> np.ndarray | None:
        """The one-level baseline as long as the local code (None: not trained)."""
        return self.one_level.get("single_level_local")

    def take(self, ids: np.ndarray) -> Codes:
        return Codes(self.hier.take(ids), {name: codes[ids] for name, codes in self.one_level.items()})
