"""The label algebra of composed codes (SPEC sec. 2) against plain Python sets, numpy and torch."""

import numpy as np
import pytest
import torch

from hashdemo.data.label_ops import compose_labels, difference, intersection, union

N_CLASSES = 6

# (name, left label set, right label set)
CASES = [
    ("disjoint", {0, 1}, {2, 3}),
    ("overlapping", {0, 1, 2}, {2, 3}),
    ("subset", {1}, {1, 4}),
    ("superset", {1, 4, 5}, {4}),
    ("equal", {2, 3}, {2, 3}),
    ("empty_left", set(), {0, 5}),
    ("empty_right", {3}, set()),
    ("both_empty", set(), set()),
]
CASE_NAMES = [name for name, _, _ in CASES]


def expected_set(operator: str, left: set[int], right: set[int]) -> set[int]:
    """SPEC sec. 2 written out on Python sets."""
    if operator == "union":
        return left | right
    if operator == "intersection":
        return left & right
    shared = left & right
    return left - shared if len(left) > len(shared) else left


def multi_hot(label_sets: list[set[int]]) -> np.ndarray:
    out = np.zeros((len(label_sets), N_CLASSES), dtype=np.uint8)
    for row, label_set in enumerate(label_sets):
        out[row, sorted(label_set)] = 1
    return out


def as_sets(labels) -> list[set[int]]:
    return [{int(c) for c in np.flatnonzero(np.asarray(row))} for row in labels]


BACKENDS = {"numpy": lambda a: a, "torch": torch.from_numpy}
FUNCTIONS = {"union": union, "intersection": intersection, "difference": difference}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("operator", sorted(FUNCTIONS))
@pytest.mark.parametrize("case", CASE_NAMES)
def test_one_case_inside_a_batch_of_all_cases(case: str, operator: str, backend: str) -> None:
    # The case sits in the middle of a batch holding every other case, so a rule that leaks
    # across rows (e.g. a sum over the whole batch instead of per row) changes its answer.
    row = CASE_NAMES.index(case)
    order = [*range(row + 1, len(CASES)), row, *range(row)]
    lefts = BACKENDS[backend](multi_hot([CASES[i][1] for i in order]))
    rights = BACKENDS[backend](multi_hot([CASES[i][2] for i in order]))
    out = FUNCTIONS[operator](lefts, rights)
    assert type(out) is type(lefts)
    assert out.shape == (len(CASES), N_CLASSES)
    assert out.dtype == lefts.dtype  # uint8 in, uint8 out, for both libraries
    got = as_sets(out.numpy() if backend == "torch" else out)
    _, left, right = CASES[row]
    assert got[order.index(row)] == expected_set(operator, left, right)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("operator", sorted(FUNCTIONS))
def test_whole_batch_row_by_row(operator: str, backend: str) -> None:
    lefts = [left for _, left, _ in CASES]
    rights = [right for _, _, right in CASES]
    out = compose_labels(operator, BACKENDS[backend](multi_hot(lefts)), BACKENDS[backend](multi_hot(rights)))
    got = as_sets(out.numpy() if backend == "torch" else out)
    assert got == [expected_set(operator, a, b) for a, b in zip(lefts, rights, strict=True)]


def test_random_batch_matches_sets_and_backends_agree() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random((200, N_CLASSES)) < 0.3).astype(np.uint8)
    b = (rng.random((200, N_CLASSES)) < 0.3).astype(np.uint8)
    for operator in FUNCTIONS:
        got_np = compose_labels(operator, a, b)
        got_torch = compose_labels(operator, torch.from_numpy(a), torch.from_numpy(b))
        np.testing.assert_array_equal(got_np, got_torch.numpy())
        assert as_sets(got_np) == [
            expected_set(operator, x, y) for x, y in zip(as_sets(a), as_sets(b), strict=True)
        ]


def test_inputs_are_not_mutated() -> None:
    a, b = multi_hot([{0, 1}, {2}]), multi_hot([{1}, {2}])
    a_before, b_before = a.copy(), b.copy()
    for operator in FUNCTIONS:
        compose_labels(operator, a, b)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("operator", ["xor", "Union", "", "complement"])
def test_unknown_operator_is_refused(operator: str) -> None:
    a = multi_hot([{0}])
    with pytest.raises(ValueError, match="unknown operator"):
        compose_labels(operator, a, a)


def test_compose_chain_folds_left_and_checks_the_operand_count() -> None:
    from hashdemo.data.label_ops import compose_chain

    a, b, c = (np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 0]]), np.array([[0, 0, 1, 1]]))
    expected = compose_labels("intersection", compose_labels("union", a, b), c)
    np.testing.assert_array_equal(compose_chain(("union", "intersection"), [a, b, c]), expected)
    np.testing.assert_array_equal(expected, [[0, 0, 1, 0]])
    with pytest.raises(ValueError, match="need 3 operands"):
        compose_chain(("union", "intersection"), [a, b])
