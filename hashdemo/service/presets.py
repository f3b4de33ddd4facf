"""The compose tab's presets: one composition per operator and one chain, of query-split images whose
target set the gallery holds, each the best its composed code finds of the first few such tuples."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from hashdemo.data.label_ops import OPERATORS, compose_chain
from hashdemo.service.answers import ComposeAnswer

Compose = Callable[..., ComposeAnswer]  # Engine.compose

CHAIN = ("union", "difference")  # the one chain offered


def target_labels(operators: tuple[str, ...], labels: list[np.ndarray]) -> np.ndarray:
    """The label set of ((l_0 op_1 l_1) op_2 l_2)..."""
    return compose_chain(operators, [lab[None] for lab in labels])[0]


def compose_presets(
    gallery_labels: np.ndarray,
    query_images: np.ndarray,
    query_labels: np.ndarray,
    compose: Compose,
    search_pairs: int,
    tried: int,
) -> dict[str, tuple[tuple[str, ...], tuple]]:
    """See `Engine.presets`: {name: (operators, query ids)}."""
    held = {row.tobytes() for row in gallery_labels}
    labels, found = query_labels[:search_pairs], {}
    for operators in [(op,) for op in OPERATORS] + [CHAIN]:
        candidates = []
        for ids in _index_tuples(len(labels), len(operators) + 1):
            target = target_labels(operators, [labels[i] for i in ids]).astype(np.uint8)
            if target.any() and target.tobytes() in held:
                candidates.append(ids)
            if len(candidates) == tried:
                break
        if candidates:
            name = operators[0] if len(operators) == 1 else f"({operators[0]}) then {operators[1]}"

            def exact_in_top_10(ids: tuple[int, ...], operators=operators) -> int:
                return _exact_in_top_10(compose, [query_images[i] for i in ids], operators)

            best = max(candidates, key=exact_in_top_10)
            found[name] = (operators, best)
    return found


def _exact_in_top_10(compose: Compose, images: list[np.ndarray], operators: tuple[str, ...]) -> int:
    """How many of the composed code's top 10 hold exactly the target set."""
    then = None if len(operators) == 1 else operators[1]
    answer = compose(images[0], images[1], operators[0], k=10, image_c=images[2] if then else None, then=then)
    return answer.exact_in_top(answer.composed) or 0


def _index_tuples(n: int, width: int, limit: int = 4000) -> Iterator[tuple[int, ...]]:
    """Distinct id tuples (pairs, triples) in a fixed order, at most `limit` of them."""
    rng = np.random.default_rng(0)
    for _ in range(limit):
        yield tuple(int(i) for i in rng.choice(n, width, replace=False))
