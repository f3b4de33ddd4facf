"""Checks at the API boundary, each raising ValueError with a sentence that names the valid range.

The UI turns these into messages in one place (`hashdemo.app.ui.user_errors`); the command line
prints them; the library raises them. One rule per quantity, written once.
"""

from __future__ import annotations

import numpy as np


def number_in_range(
    name: str, value: object, low: float, high: float, *, integer: bool = False
) -> float | int:
    """`value` as a float (or int) within [low, high], else ValueError naming the range (never clamped)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if integer and number == number and number != int(number):
        number = float("nan")
    if not low <= number <= high:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} between {low:g} and {high:g} (got {value!r}).")
    return int(number) if integer else number


def positive_int(name: str, value: object) -> int:
    """A positive integer, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def binary_matrix(array: np.ndarray, name: str, columns: int | None = None) -> np.ndarray:
    """`array` as a 2-D uint8 array of 0/1 values (codes as bits, labels as multi-hot), else ValueError."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (rows, columns), got shape {array.shape}; wrap one row as x[None]."
        )
    if columns is not None and array.shape[1] != columns:
        raise ValueError(f"{name} has {array.shape[1]} columns, expected {columns}.")
    # min/max is cheap on the hot path; the equality check only runs for float input.
    if array.dtype != np.bool_ and (
        (array.size and (array.min() < 0 or array.max() > 1))
        or (not np.issubdtype(array.dtype, np.integer) and not np.array_equal(array, array.astype(np.uint8)))
    ):
        raise ValueError(f"{name} must contain only 0/1 values (bits or multi-hot labels, not ±1 signs).")
    return array.astype(np.uint8, copy=False)
